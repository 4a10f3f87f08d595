"""The static gate's reading of native source: CUDA C++ and compiler flags held in strings.

A ``cuda`` or ``cuda-inline`` candidate carries its kernel as text the Python AST cannot see
into; :func:`scan` matches it against ``gate_rules``' native tables (side streams, host
threads, files and the environment, vendor libraries, ATen compute) and names the line of each
match in the candidate file.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Callable, Iterator

from . import reasons
from .gate_rules import (
    COMPUTE_METHODS,
    CPP_LIBRARY,
    CPP_MARKERS,
    CPP_METHOD_CALL,
    CPP_RULES,
    CPP_TORCH_CALL,
    HINT,
    TORCH_HOST_OK,
)


def is_native(text: str) -> bool:
    return text.startswith("-") or any(m in text for m in CPP_MARKERS)


def scan(
    text: str, first_line: int, allowed: Callable[[str], bool]
) -> Iterator[tuple[str, int, str]]:
    """(code, line, message) for each cheat in ``text``, a string starting at ``first_line``;
    ``allowed(op)`` says whether the problem's ALLOW_TORCH admits a torch op."""

    def line(m: re.Match) -> int:
        return first_line + bisect.bisect_left(_newlines(text), m.start())

    for rx, code, what in CPP_RULES:
        for m in re.finditer(rx, text):
            yield code, line(m), f"{m.group(0)} in native source {what}"
    for m in CPP_LIBRARY.finditer(text):
        if not allowed("matmul" if "blas" in m.group(0).lower() else "conv2d"):
            what = f"{m.group(0)} (a vendor library)"
            yield reasons.TORCH_COMPUTE, line(m), f"{what} is a torch compute op; {HINT}"
    calls = list(CPP_TORCH_CALL.finditer(text))
    if "torch::" in text or "at::" in text:  # ATen tensor methods in a load_inline source
        calls += [m for m in CPP_METHOD_CALL.finditer(text) if m.group(1) in COMPUTE_METHODS]
    for m in calls:
        if m.group(1) not in TORCH_HOST_OK and not allowed(m.group(1)):
            what = m.group(0).rstrip("( ") + " in native source"
            yield reasons.TORCH_COMPUTE, line(m), f"{what} is a torch compute op; {HINT}"


@functools.lru_cache(maxsize=8)
def _newlines(text: str) -> list[int]:
    """Offsets of the newlines in ``text``: a match's line is a bisection, not a count (counting
    from the start for each of 100,000 matches held the orchestrator for minutes)."""
    return [i for i, c in enumerate(text) if c == "\n"]
