"""The root of every error kernelloop raises on purpose.

``except KernelloopError`` catches a bad problem file, a size that cannot fit, a run or library
entry that does not exist, a compile error, an LLM endpoint that gave up, ... and nothing else:
a bug stays a bug. Each error keeps the builtin base it had (``ValueError`` for bad input,
``RuntimeError`` for a tool that failed), so existing ``except`` clauses still hold.
"""

from __future__ import annotations


class KernelloopError(Exception):
    """Base of kernelloop's own errors."""
