"""Copy the library's seed kernels into a candidate, renamed with a segment's prefix.

Candidates cannot import kernelloop, so a template that reuses a seed kernel emits its source:
each ``@triton.jit`` function's text, with every one of the copied names (definitions and the
calls between them) prefixed so two segments never collide.
"""

from __future__ import annotations

import inspect
import re
from types import ModuleType


def source(module: ModuleType, names: list[str], prefix: str) -> str:
    """The jit functions ``names`` of ``module`` as source, ``_x`` renamed ``{prefix}_x``."""
    fns = [getattr(module, n) for n in names]
    text = "\n\n\n".join(inspect.getsource(getattr(f, "fn", f)).rstrip() for f in fns)
    pattern = re.compile(r"\b(" + "|".join(re.escape(n) for n in names) + r")\b")
    return pattern.sub(lambda m: prefix + m.group(1), text) + "\n"
