"""The one typed result of evaluating a candidate: :class:`Verdict`.

A verdict is JSON-serialisable and round-trips (``Verdict.from_dict(v.to_dict()) == v``); stored
verdicts carry ``schema_version`` so later readers can migrate old records. ``accepted`` is true
only when every check ran and passed; ``reasons`` then is empty. A verdict never claims a timing it
did not measure: on a machine without a GPU ``timing`` is ``None`` and ``timing_note`` says why.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from .stats import Interval, Summary

SCHEMA_VERSION = 1


@dataclasses.dataclass(frozen=True)
class Reason:
    code: str  # a constant from kernelloop.sandbox.reasons
    message: str


@dataclasses.dataclass
class BuildResult:
    ok: bool
    seconds: float = 0.0
    log: str = ""  # compiler output, truncated


@dataclasses.dataclass
class TrialResult:
    name: str  # e.g. "main/scaled/s2" or "holdout1/given/s1"
    passed: bool
    max_abs_err: float | None = None
    max_rel_err: float | None = None
    mismatched: int = 0  # elements outside tolerance
    numel: int = 0
    message: str = ""


@dataclasses.dataclass
class CorrectnessResult:
    passed: bool
    trials: list[TrialResult] = dataclasses.field(default_factory=list)
    checks: dict[str, bool] = dataclasses.field(default_factory=dict)  # determinism, drift, ...
    tolerance: dict[str, float] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CorrectnessResult:
        return cls(
            passed=d["passed"],
            trials=[TrialResult(**t) for t in d.get("trials", [])],
            checks=dict(d.get("checks", {})),
            tolerance=dict(d.get("tolerance", {})),
        )


@dataclasses.dataclass
class TimingResult:
    gpu: str
    candidate: Summary
    eager: Summary
    compiled: Summary | None
    speedup_eager: Interval
    speedup_compile: Interval | None
    order: list[str]  # the randomised order in which the three were measured
    roofline_floor_ms: float | None = None
    wall_ms_per_call: float | None = None  # from the orchestrator's clock, outside the worker
    achieved_gbps: float | None = None
    achieved_tflops: float | None = None
    fraction_of_peak: float | None = None  # of the roofline-attainable rate
    notes: list[str] = dataclasses.field(default_factory=list)
    # NvmlReport.to_dict() of the timed loop (clocks, power, throttling); None without NVML.
    nvml: dict[str, Any] | None = None
    # guards.resources_of() per compiled Triton kernel that ran: registers, spills, warps.
    kernels: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TimingResult:
        d = dict(d)
        for key in ("candidate", "eager", "compiled"):
            d[key] = Summary.from_dict(d[key]) if d.get(key) else None
        for key in ("speedup_eager", "speedup_compile"):
            d[key] = Interval.from_dict(d[key]) if d.get(key) else None
        return cls(**d)


@dataclasses.dataclass
class Verdict:
    accepted: bool
    reasons: list[Reason]
    problem_id: str
    size: str
    backend: str | None
    device: str  # "cpu (Triton interpreter)", "NVIDIA H100 80GB HBM3", ...
    sandbox: str  # isolation backend that ran the worker
    build: BuildResult | None = None
    static: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    correctness: CorrectnessResult | None = None
    timing: TimingResult | None = None
    timing_note: str | None = None  # why timing is absent, when it is
    phases: dict[str, float] = dataclasses.field(default_factory=dict)  # seconds per phase
    # seconds per step inside the phases ("candidate.forward", "compare.read", ...), summed
    phase_detail: dict[str, float] = dataclasses.field(default_factory=dict)
    worker: dict[str, Any] = dataclasses.field(default_factory=dict)  # exit status, output tails
    # The Triton launches the worker saw under the interpreter (guards.launch_record): kernel,
    # argument types as a GPU launch specialises them, constexprs, warps, stages. Advisory (the
    # candidate shares the worker); with them a CPU machine compiles the kernels for a GPU target.
    launches: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    # What the evaluator noticed without rejecting (an unlaunched helper kernel, a check skipped
    # at this size) and what a CPU verdict does not prove.
    notes: list[str] = dataclasses.field(default_factory=list)
    # The sizes checked: variant ("main", "holdout1", ...) -> the constants it overrides.
    sizes: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    @property
    def codes(self) -> list[str]:
        """Distinct reason codes, in the order they were first given."""
        return list(dict.fromkeys(r.code for r in self.reasons))

    def reject(self, code: str, message: str) -> None:
        if not any(r.code == code and r.message == message for r in self.reasons):
            self.reasons.append(Reason(code, message))
        self.accepted = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Verdict:
        d = dict(d)
        version = d.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ValueError(f"verdict schema {version} is not {SCHEMA_VERSION}")
        d["reasons"] = [Reason(**r) for r in d.get("reasons", [])]
        d["build"] = BuildResult(**d["build"]) if d.get("build") else None
        d["correctness"] = (
            CorrectnessResult.from_dict(d["correctness"]) if d.get("correctness") else None
        )
        d["timing"] = TimingResult.from_dict(d["timing"]) if d.get("timing") else None
        return cls(**d)

    @classmethod
    def from_json(cls, text: str) -> Verdict:
        return cls.from_dict(json.loads(text))
