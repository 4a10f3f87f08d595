"""The seams between the graph and its agents: what a Coder hands the graph for one slot of a
round, and what the graph may ask of a Judge (LLM or builtin alike)."""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol


@dataclasses.dataclass(frozen=True)
class Proposed:
    source: str | None = None  # a candidate to evaluate
    error: str | None = None  # the Coder itself failed (an LLM call that exhausted its retries)
    halt: str | None = None  # nothing can be written for this problem: stop it, with this reason
    no_code: bool = False  # a reply without a usable ModelNew block (the next prompt says so)
    skip: bool = False  # nothing to offer in this slot this round (fewer ideas than slots)


class Judge(Protocol):
    name: str
    # Whether advice can use a Triton kernel's compiled resources (registers, shared memory) from
    # a run without a GPU timing: the graph compiles the interpreted launches only for a judge
    # that reads them (an LLM does; the builtin search needs a timing to move at all).
    reads_untimed_resources: bool

    def advise(self, ctx, state, mode: str, best_round, failing) -> tuple[dict[str, Any], Any]:
        """Advice for the next round (``halt`` in it ends the problem) and the call's id."""
