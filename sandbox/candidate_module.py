"""How a candidate's source becomes a module in its worker: the one place candidate code is run.

The source is compiled and executed into a fresh module named ``candidate`` (Triton reads kernel
sources through it), whose builtins are the gate's safe set (:func:`builtins_for_candidate`), and
``ModelNew`` is taken from it.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any


def load(path: Path) -> type:
    """Run the candidate file at ``path``; its ``ModelNew`` class."""
    module = types.ModuleType("candidate")
    module.__file__ = str(path)
    sys.modules["candidate"] = module  # Triton reads kernel sources through the module
    module.__dict__["__builtins__"] = builtins_for_candidate()
    code = compile(path.read_text(), str(path), "exec")
    exec(code, module.__dict__)
    cls = getattr(module, "ModelNew", None)
    if not isinstance(cls, type):
        raise TypeError("the candidate defines no class ModelNew")
    return cls


def builtins_for_candidate() -> dict[str, Any]:
    """The builtins the candidate's module runs with: the gate's safe set, without eval, exec,
    compile, open, vars, globals and the like. Behind the gate (threat row 23): a candidate that
    reached its own module's globals (a Triton runtime object handed them out) found eval there.
    ``__import__`` stays the real one: torch's C++ imports its lazy modules through the builtins
    of the calling frame, which is the candidate's."""
    import builtins

    from .gate_names import SAFE_BUILTINS

    allowed = {n: getattr(builtins, n) for n in SAFE_BUILTINS if hasattr(builtins, n)}
    return {**allowed, "__build_class__": builtins.__build_class__, "__import__": __import__}
