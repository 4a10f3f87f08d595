"""What a Coder hands the graph for one slot of a round (LLM or builtin alike)."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Proposed:
    source: str | None = None  # a candidate to evaluate
    error: str | None = None  # the Coder itself failed (an LLM call that exhausted its retries)
    halt: str | None = None  # nothing can be written for this problem: stop it, with this reason
    no_code: bool = False  # a reply without a usable ModelNew block (the next prompt says so)
    skip: bool = False  # nothing to offer in this slot this round (fewer ideas than slots)
