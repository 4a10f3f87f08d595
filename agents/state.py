"""The campaign graph's typed state and options.

One graph run = one problem. Nodes return partial updates of :class:`ProblemState`; the
LangGraph checkpointer stores it after every node, which is what ``--resume`` continues from.
Everything large (sources, verdicts, LLM transcripts) lives in the run store; the state holds
ids and the compact history the Coder is shown.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypedDict


class Attempt(TypedDict):
    """One line of the history the Coder sees: what was tried and what it gave."""

    round: int
    candidate_id: str
    mode: str
    accepted: bool | None
    codes: list[str]
    speedup: float | None
    note: str


class ProblemState(TypedDict, total=False):
    problem_id: str
    round: int  # the round being worked on (0-based)
    mode: str  # "initial" | "repair" | "optimize": what the next proposals are for
    round_ids: list[str]  # candidates proposed this round
    best_id: str | None  # best verified candidate so far: children branch from it
    best_speedup: float | None
    advice: dict[str, Any] | None  # the Judge's last advice
    profile: str | None  # hardware/static summary of the candidate the Judge reads
    history: list[Attempt]
    no_code: int  # replies without a ModelNew block this round (the next prompt says so)
    stale_rounds: int  # rounds without improving the best (plateau detection)
    stop_reason: str | None
    halt: str | None  # set by the Coder or Judge when nothing more can be done for the problem


@dataclasses.dataclass(frozen=True)
class CampaignOptions:
    rounds: int = 3
    candidates: int = 2  # K proposals per round, requested concurrently
    backend: str = "triton"
    size: str | None = None
    sets: dict[str, Any] = dataclasses.field(default_factory=dict)
    budget_usd: float | None = None
    budget_tokens: int | None = None
    budget_minutes: float | None = None
    plateau_rounds: int = 2  # stop after this many rounds without a better kernel
    min_gain: float = 0.02  # a new best must beat the old by 2% to count as progress
    sandbox: str | None = None
    temperature: float | None = None  # passed to both agents when set
    reasoning_effort: str | None = None  # "low" | "medium" | "high", for reasoning models
    executor: str = "local"  # "local" | "ray": where evaluations run (sandbox/executors)
    ray_address: str | None = None  # the Ray cluster for executor "ray"; None starts a local one
    # LLM campaigns: add the builtin coder's kernel to round 0, a verified start and a baseline
    # the Coder's kernels must beat (optimize rounds branch from whichever is best).
    seed_builtin: bool = False
    # Promote verified but untimed winners (a CPU campaign) into the library's untimed tier.
    allow_untimed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
