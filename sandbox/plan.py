"""What one evaluation will run: size variants, trials with secret seeds, and the device.

Seeds come from ``secrets`` and exist only in the orchestrator and the reference worker: the
candidate receives inputs, never the seeds that made them (threat rows 7 and 14), so it cannot
regenerate, predict or precompute them.
"""

from __future__ import annotations

import dataclasses
import secrets
from typing import Any

from ..kernelbench import autosize, preflight
from ..kernelbench.problem import Problem

MAIN_SEEDS = 3  # trials at the evaluated size, each with its own seed and distribution


@dataclasses.dataclass
class Trial:
    name: str
    variant: str
    seed: int
    distribution: str

    def to_job(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Plan:
    size: str
    device: str  # "cuda" or "cpu"
    variants: dict[str, dict[str, Any]]  # "main", "holdout1", ... -> constant overrides
    trials: list[Trial]
    init_seed: int

    @property
    def repeat(self) -> str:
        """The trial run twice to check determinism (threat row 17)."""
        return self.trials[0].name

    @property
    def drift(self) -> list[str]:
        """Trials re-run after the timing loop (threat row 19)."""
        main = [t.name for t in self.trials if t.variant == "main"]
        return main[1:2] or main[:1]


def _seed() -> int:
    return secrets.randbits(31)


def make_plan(
    problem: Problem, *, device: str, size: str | None = None, sets: dict[str, Any] | None = None
) -> Plan:
    size = size or problem.default_size(device)
    main = problem.overrides_for(size, sets)
    preflight.check(problem, main, device, size)
    variants = {"main": main}
    # Declared hold-outs, else variants drawn around the evaluated size from a secret seed:
    # a kernel that hard-codes the one shape it saw fails either way.
    extras = [{**main, **h} for h in problem.holdout] or autosize.holdouts(problem, main, _seed())
    for i, extra in enumerate(extras, start=1):
        variants[f"holdout{i}"] = extra
    trials: list[Trial] = []
    dists = problem.distributions
    for i in range(MAIN_SEEDS):
        dist = dists[i % len(dists)]
        trials.append(Trial(f"main-{dist}-{i + 1}", "main", _seed(), dist))
    for name in variants:
        if name != "main":
            trials.append(Trial(f"{name}-given", name, _seed(), dists[0]))
    return Plan(size, device, variants, trials, _seed())
