"""The seams between the graph and its agents: what the graph asks of a Coder for one slot of a
round and what the Coder hands back, and what it asks of a Judge and what the Judge answers
(LLM or builtin alike). Each request is one frozen object, so a new field reaches every agent
without touching their signatures."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..runs.rows import CandidateRow
    from .context import CampaignContext
    from .state import ProblemState


@dataclasses.dataclass(frozen=True)
class CoderRequest:
    ctx: CampaignContext  # the problem, options, run store and LLM clients
    state: ProblemState  # the graph state: round, mode, the Judge's advice, the history
    parent_source: str | None  # the kernel to start from: the best (optimize) or failing (repair)
    failing: dict | None  # repair: the round's first rejected candidate, with source and verdict
    index: int  # which slot of the round this is, 0-based (slot 0 writes the obvious kernel)
    count: int  # how many slots the round has (K): later slots try something different
    # The parent's run-store row (None in round 0); the builtin coder reads the configs it
    # emitted from its ``builtin_config``.
    parent: CandidateRow | None = None


@dataclasses.dataclass(frozen=True)
class Proposed:
    source: str | None = None  # a candidate to evaluate
    error: str | None = None  # the Coder itself failed (an LLM call that exhausted its retries)
    halt: str | None = None  # nothing can be written for this problem: stop it, with this reason
    no_code: bool = False  # a reply without a usable ModelNew block (the next prompt says so)
    skip: bool = False  # nothing to offer in this slot this round (fewer ideas than slots)
    # The builtin coder's record of what it emitted ({"templates", "configs", "plan"}), stored
    # with the candidate for its judge's search; None from any other Coder.
    builtin_config: dict[str, Any] | None = None


class Coder(Protocol):
    name: str

    def propose(self, request: CoderRequest) -> Proposed:
        """One candidate (or why there is none) for the request's slot."""


@dataclasses.dataclass(frozen=True)
class JudgeRequest:
    ctx: CampaignContext  # the problem, options, run store and LLM clients
    state: ProblemState  # the graph state: round, history, the latest profile summary
    mode: str  # "repair" (nothing correct this round) or "optimize"
    best_round: CandidateRow | None  # optimize: the round's best accepted candidate's row
    failing: dict | None  # repair: the round's first rejected candidate, with source and verdict


@dataclasses.dataclass(frozen=True)
class Judgement:
    # The next round's advice; ``halt`` in it ends the problem, ``error`` records a failed
    # judgement (the Coder then works without advice).
    advice: dict[str, Any]
    call_id: str | None = None  # the LLM call that produced it (None: no call was made)


class Judge(Protocol):
    name: str
    # Whether advice can use a Triton kernel's compiled resources (registers, shared memory) from
    # a run without a GPU timing: the graph compiles the interpreted launches only for a judge
    # that reads them (an LLM does; the builtin search needs a timing to move at all).
    reads_untimed_resources: bool

    def advise(self, request: JudgeRequest) -> Judgement:
        """Advice for the next round and the call that produced it."""
