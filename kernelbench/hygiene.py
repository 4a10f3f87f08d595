"""Task hygiene: is a problem worth scoring at all? (threat rows 13 and 15)

A degenerate problem lets a wrong kernel pass: an output that ignores an input, a constant
output, or values so small that returning zeros is "within tolerance". :func:`check` runs the
reference (trusted code, in this process) and reports each check with the evidence, plus two
runtime figures: the measured CPU time at the checked size and the roofline time the GPU size
needs on an H100 (estimated on the meta device, so nothing large is allocated).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import torch

from . import autosize, instance, preflight
from .problem import Problem, ProblemError

TINY_MS = 0.1  # below this the GPU size is launch-overhead territory (row 15)
_SEED_A, _SEED_B, _INIT_A, _INIT_B = 1234, 98765, 42, 4242


@dataclasses.dataclass
class Check:
    passed: bool
    detail: str


@dataclasses.dataclass
class HygieneReport:
    problem_id: str
    size: str
    checks: dict[str, Check]
    cpu_ms: float | None = None
    gpu_estimate_ms: float | None = None

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks.values())

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "passed": self.passed}


def _outputs(problem: Problem, overrides: dict, seed: int, init_seed: int, swap: int | None = None):
    module = problem.instantiate(overrides)
    model = instance.build_model(module, init_seed, problem.dtype)
    inputs = instance.make_inputs(module, seed, "given", problem.dtype)
    if swap is not None:  # replace one input with the same input drawn under another seed
        other = instance.make_inputs(module, seed + 1, "given", problem.dtype)
        inputs[swap] = other[swap]
    return model, inputs, instance.run_reference(model, inputs)


def _differs(a: list, b: list, tol: dict) -> bool:
    return any(
        x.shape != y.shape or not torch.allclose(x.double(), y.double(), **tol, equal_nan=True)
        for x, y in zip(a, b, strict=True)
    )


def check(problem: Problem, size: str | None = None, sets: dict | None = None) -> HygieneReport:
    """Every check at ``size`` (default: the CPU size, declared or derived). A problem that
    cannot be evaluated at all gets a report that says why, not an exception."""
    size = size or problem.default_size("cpu")
    checks: dict[str, Check] = {}
    report = HygieneReport(problem.id, size, checks)
    try:
        overrides = problem.overrides_for(size, sets)
        preflight.check(problem, overrides, "cpu", size)
        checks["evaluable"] = Check(True, "deterministic reference; fits this machine")
        _checks(problem, overrides, report)
    except preflight.NotEvaluable as exc:
        checks["evaluable"] = Check(False, str(exc))
    except ProblemError as exc:  # no size can be derived, or this one cannot fit
        checks["evaluable"] = Check(False, str(exc))
    except Exception as exc:  # the reference itself fails: report it, go on with the next
        checks["reference_runs"] = Check(False, f"{type(exc).__name__}: {str(exc)[:300]}")
    return report


def _checks(problem: Problem, overrides: dict, report: HygieneReport) -> None:
    tol = {"atol": problem.tolerance["atol"], "rtol": problem.tolerance["rtol"]}
    checks = report.checks

    started = time.perf_counter()
    model, inputs, ref = _outputs(problem, overrides, _SEED_A, _INIT_A)
    report.cpu_ms = (time.perf_counter() - started) * 1e3

    finite = all(torch.isfinite(r.double()).all() for r in ref if r.is_floating_point())
    checks["finite_outputs"] = Check(
        bool(finite),
        "reference outputs are finite" if finite else "the reference produces NaN or Inf",
    )
    zeros = [torch.zeros_like(r) for r in ref]
    checks["above_noise_floor"] = Check(
        _differs(zeros, ref, tol),
        "an all-zeros output fails the tolerance"
        if _differs(zeros, ref, tol)
        else "an all-zeros output would pass: outputs are below "
        "the tolerance; raise the sizes/scales or tighten TOLERANCE",
    )
    # A constant stand-in: the mean for floating outputs, the first element for integer ones.
    means = [
        torch.full_like(r, r.double().mean().item() if r.is_floating_point() else r.flatten()[0])
        for r in ref
    ]

    checks["not_constant"] = Check(_differs(means, ref, tol), "output varies within a call")

    _, _, ref_b = _outputs(problem, overrides, _SEED_B, _INIT_A)
    checks["varies_across_seeds"] = Check(_differs(ref, ref_b, tol), "other inputs, other output")

    for i, item in enumerate(inputs):
        if isinstance(item, torch.Tensor):
            _, _, swapped = _outputs(problem, overrides, _SEED_A, _INIT_A, swap=i)
            ok = _differs(ref, swapped, tol)
            checks[f"depends_on_input_{i}"] = Check(
                ok,
                "output changes with this input" if ok else f"input {i} does not affect the output",
            )
    if any(True for _ in model.parameters()) or any(True for _ in model.buffers()):
        _, _, other = _outputs(problem, overrides, _SEED_A, _INIT_B)
        ok = _differs(ref, other, tol)
        checks["depends_on_weights"] = Check(
            ok,
            "output changes with the parameters"
            if ok
            else "the parameters do not affect the output",
        )

    # Declared hold-outs, else the kind the evaluator derives (drawn here from a fixed seed).
    extras = [{**overrides, **h} for h in problem.holdout]
    if not extras:
        extras = autosize.holdouts(problem, overrides, _SEED_A)
        checks["has_holdout"] = Check(
            bool(extras),
            f"{len(extras)} hold-out sizes derived per evaluation"
            if extras
            else "no HOLDOUT declared and none can be derived: declare HOLDOUT variants",
        )
    for i, extra in enumerate(extras, start=1):
        changed = {k: v for k, v in extra.items() if overrides.get(k) != v}
        try:
            _outputs(problem, extra, _SEED_A, _INIT_A)
            checks[f"holdout{i}_runs"] = Check(True, f"reference runs with {changed}")
        except Exception as exc:  # a broken hold-out variant is a problem bug: report it
            checks[f"holdout{i}_runs"] = Check(False, f"{changed}: {type(exc).__name__}: {exc}")

    report.gpu_estimate_ms = gpu_estimate_ms(problem)
    if report.gpu_estimate_ms is not None:
        big = report.gpu_estimate_ms >= TINY_MS
        detail = f"roofline {report.gpu_estimate_ms:.3f} ms on H100"
        if not big and problem.real_size:
            # A captured model's own size: a fact about the workload, not a badly chosen
            # benchmark. The library's bar (faster than PyTorch with confidence) still holds.
            detail += f" < {TINY_MS} ms: the model's real size, so launch overhead will dominate"
        elif not big:
            detail += f" < {TINY_MS} ms: launch overhead would dominate"
        checks["gpu_size_not_tiny"] = Check(big or problem.real_size, detail)


def gpu_estimate_ms(problem: Problem) -> float | None:
    """Roofline time of the GPU size on an H100, from a meta-device run (no real compute)."""
    from ..feedback import gpu_specs, roofline

    try:
        module = problem.instantiate({})
        with torch.device("meta"):
            torch.manual_seed(0)
            model = module.Model(*module.get_init_inputs()).to(instance.torch_dtype(problem.dtype))
            inputs = [
                t.to(instance.torch_dtype(problem.dtype))
                if isinstance(t, torch.Tensor) and t.is_floating_point()
                else t
                for t in module.get_inputs()
            ]
            work = roofline.estimate_work(model, inputs)
    except Exception:  # some references cannot run on meta tensors; the estimate is optional
        return None
    spec = gpu_specs.lookup("NVIDIA H100 80GB HBM3")
    return roofline.floor_seconds(work, spec, instance.torch_dtype(problem.dtype)) * 1e3
