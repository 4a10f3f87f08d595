"""Where an evaluation's seconds go: named spans, summed, for the verdict's phases.

The orchestrator times its phases; the workers time their steps (loading inputs, the forward,
writing and hashing outputs) and send them in their frames. At GPU size an evaluation takes a
minute or more, and these numbers say which step to make faster.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator


@contextlib.contextmanager
def timed(spans: dict[str, float], name: str) -> Iterator[None]:
    """Adds the block's wall time to ``spans[name]``, in seconds."""
    started = time.perf_counter()
    try:
        yield
    finally:
        spans[name] = round(spans.get(name, 0.0) + time.perf_counter() - started, 4)


def add(spans: dict[str, float], prefix: str, more: object) -> None:
    """Adds a worker's reported spans under ``prefix.`` (ignoring anything but numbers: frames
    from a candidate's worker are untrusted)."""
    if not isinstance(more, dict):
        return
    for name, seconds in list(more.items())[:32]:
        if isinstance(name, str) and isinstance(seconds, int | float) and 0 <= seconds < 1e6:
            key = f"{prefix}.{name[:40]}"
            spans[key] = round(spans.get(key, 0.0) + float(seconds), 4)
