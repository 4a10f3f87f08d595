"""Efficiency modules: attention, quantized GEMM, convolution (functional ops + ``nn.Module``s).

``from kernelloop.modules import attention, Attention, QuantLinear, Conv2d``. Each op runs the
best kernel the library has for the call (``kernelloop.library.dispatch``).

Importing this package imports every module file (``attention.py``, ``qgemm.py``, ``conv.py``),
because each registers its op with the library at import; the library finds this package
through its ``kernelloop.ops`` entry point (``pyproject.toml``) and never imports it by name.
The public names resolve through ``__getattr__`` on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_SUBMODULES = ("attention", "qgemm", "conv")
_EXPORTS = {
    "attention": "attention",
    "Attention": "attention",
    "quantize_weight": "qgemm",
    "QuantLinear": "qgemm",
    "conv2d": "conv",
    "Conv2d": "conv",
}
__all__ = list(_EXPORTS)


def _register_ops() -> None:
    for name in _SUBMODULES:
        importlib.import_module(f".{name}", __name__)
    # Importing a submodule binds it as a package attribute, and the submodule `attention`
    # shares its name with the function `attention`: drop such bindings so that
    # `kernelloop.modules.attention` is the function (the submodule stays in sys.modules, so
    # `from kernelloop.modules.attention import ...` still reaches it).
    for name in _SUBMODULES:
        if name in _EXPORTS:
            globals().pop(name, None)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f".{_EXPORTS[name]}", __name__)
    value = getattr(module, name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


_register_ops()
