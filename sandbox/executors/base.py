"""What every executor takes and offers."""

from __future__ import annotations

import dataclasses
from concurrent.futures import Future
from typing import Any, Protocol

from ...kernelbench.problem import Problem
from ..verdict import Verdict


@dataclasses.dataclass(frozen=True)
class EvalSpec:
    """The evaluator's keyword arguments a campaign fixes for all of its candidates."""

    size: str | None = None
    sets: dict[str, Any] = dataclasses.field(default_factory=dict)
    sandbox: str | None = None
    timeout_s: float | None = None
    gate: str = "enforce"

    def kwargs(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class Executor(Protocol):
    name: str
    parallelism: int  # evaluations that can usefully run at once (problems worth running at once)

    def submit(self, problem: Problem, source: str) -> Future[Verdict]:
        """Queue one evaluation; the future's result is its verdict."""

    def __call__(self, problem: Problem, source: str) -> Verdict:
        """Evaluate one candidate and wait for it (the campaign's ``evaluate`` callable)."""

    def close(self) -> None:
        """Wait for nothing more; release threads or the cluster connection."""
