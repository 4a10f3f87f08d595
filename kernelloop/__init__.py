"""kernelloop: verified, faster GPU kernels for PyTorch code.

Importing this package is cheap: subpackages (``kernelloop.sandbox``, ``kernelloop.kernelbench``,
...) are imported only when used, and none of the core pulls in an LLM SDK, a GPU or a network.

``kernelloop.patch(model, "capture.json")`` swaps a model's captured module calls for their
library kernels and ``kernelloop.unpatch(model)`` undoes it (``model_patch.py``); both are
imported, with torch, on first use.
"""

__version__ = "0.1.0"

_LAZY = ("patch", "unpatch", "PatchReport")


def __getattr__(name: str) -> object:
    # Not imported at the top (nor typing): the CLI and the core import this package, and must
    # not pay for torch and the library until someone patches a model.
    if name in _LAZY:
        from . import model_patch

        value = getattr(model_patch, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
