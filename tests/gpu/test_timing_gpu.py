"""Timing threats on a real GPU (rows 3, 6, 8, 16, 18, 19, 20 of shared/docs/evaluator-threats.md).

Skipped without CUDA (tests/gpu/conftest.py). Cheating candidates come from tests/candidates/ and
are run with ``gate="report"`` where the static gate would otherwise stop them before the timing
layer is reached. The honest ReLU is timed first and its median is the yardstick for the cheats,
measured in the same session on the same GPU.
"""

from __future__ import annotations

import re

import pytest
import torch
from paths import CANDIDATES

from kernelloop import settings
from kernelloop.kernelbench import loader
from kernelloop.sandbox import reasons as R
from kernelloop.sandbox.evaluate import evaluate
from kernelloop.sandbox.plan import make_plan

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

RELU = "level1/01_relu"
MATMUL = "level1/14_matmul_square"


def candidate(name: str, **lines: str) -> str:
    text = (CANDIDATES / f"{name}.py").read_text()
    for var, value in lines.items():
        pattern = re.compile(rf"^{var} = .*$", re.MULTILINE)
        assert pattern.search(text), f"{name}.py has no line {var} = ..."
        text = pattern.sub(f"{var} = {value}", text, count=1)
    return text


@pytest.fixture(autouse=True)
def _short_timing():
    with settings.override(timing_budget_ms=100, warmup_ms=20, compile_baseline=False):
        yield


@pytest.fixture(scope="module")
def honest_relu():
    """The bundled ReLU at the GPU size, with both baselines (eager and torch.compile)."""
    problem = loader.load_one(RELU)
    with settings.override(timing_budget_ms=100, warmup_ms=20, compile_baseline=True):
        return evaluate(problem, loader.solution_path(problem).read_text(), size="gpu",
                        device="cuda")  # fmt: skip


def test_honest_relu_has_baselines_intervals_and_a_roofline_position(honest_relu):
    v = honest_relu
    assert v.accepted, v.reasons
    t = v.timing
    assert t is not None and t.candidate.n >= 10 and t.eager.n >= 10
    # Row 16: speedups against eager and torch.compile, as intervals (row 22).
    assert t.speedup_eager.low <= t.speedup_eager.point <= t.speedup_eager.high
    assert t.compiled is not None or any("compile" in n for n in t.notes), t.notes
    if t.compiled is not None:
        assert t.speedup_compile is not None
        assert t.speedup_compile.low <= t.speedup_compile.point <= t.speedup_compile.high
    assert {"eager", "compile"} <= set(t.order), t.order
    # Row 20: a real kernel is never faster than the roofline allows.
    assert t.roofline_floor_ms and t.candidate.median >= t.roofline_floor_ms
    assert t.fraction_of_peak is not None and 0 < t.fraction_of_peak <= 1.0
    # Rows 3/6: the outside clock agrees with the events.
    assert t.wall_ms_per_call is not None and t.wall_ms_per_call > 0
    checks = v.correctness.checks
    assert checks["deterministic"] and checks["inputs_untouched"] and checks["no_drift"], checks


def test_l2_flush_buffer_is_at_least_twice_the_l2():
    """Row 18: the flush between iterations evicts all of L2, and persisting L2 is reset."""
    from kernelloop.sandbox import timing

    props = torch.cuda.get_device_properties(0)
    flusher = timing.L2Flusher(torch.device("cuda"))
    assert props.L2_cache_size > 0
    assert flusher.nbytes >= 2 * props.L2_cache_size
    assert flusher.buffer.numel() * flusher.buffer.element_size() >= 2 * props.L2_cache_size
    assert flusher.persisting_reset is True


def test_side_stream_work_is_timed_in_full(honest_relu):
    """Row 3: the same ReLU launched on a side stream, gate bypassed. Device-wide synchronisation
    inside the timed window and the outside clock must keep its timing honest."""
    assert honest_relu.accepted and honest_relu.timing is not None
    problem = loader.load_one(RELU)
    v = evaluate(problem, candidate("r03_side_stream"), size="gpu", device="cuda", gate="report")
    assert R.STREAMS in {f["code"] for f in v.static}
    if R.WALL_CLOCK_MISMATCH in v.codes:
        assert not v.accepted
        return
    assert v.timing is not None, v.reasons
    honest = honest_relu.timing.candidate.median
    assert v.timing.candidate.median >= 0.5 * honest, (
        f"side-stream median {v.timing.candidate.median:.4f} ms vs honest {honest:.4f} ms"
    )
    assert v.timing.candidate.median >= v.timing.roofline_floor_ms
    assert R.BELOW_ROOFLINE_FLOOR not in v.codes


def test_fake_timer_is_rejected_and_does_not_shorten_the_timing():
    """Row 6: the candidate replaces ``torch.cuda.Event.elapsed_time`` on every call; the worker
    times with functions captured before the candidate loaded and reports the patch."""
    problem = loader.load_one(RELU)
    v = evaluate(problem, candidate("r06_patch_event_in_forward"), size="gpu", device="cuda",
                 gate="report")  # fmt: skip
    assert not v.accepted
    assert R.FUNCTION_PATCHED in v.codes, v.codes
    if v.timing is not None:  # if a timing is reported at all, it is not below physics
        assert v.timing.candidate.median >= v.timing.roofline_floor_ms


def test_patched_timers_at_import_are_rejected():
    problem = loader.load_one(RELU)
    v = evaluate(problem, candidate("r06_patch_timers"), size="cpu", device="cuda", gate="report")
    assert not v.accepted
    assert R.FUNCTION_PATCHED in v.codes, v.codes


def test_tf32_matmul_fails_the_fp32_tolerance():
    """Row 8: ``tl.dot`` at its default precision is TF32 on a GPU (the CPU interpreter cannot
    show this: it multiplies in exact fp32)."""
    problem = loader.load_one(MATMUL)
    v = evaluate(problem, candidate("r08_matmul_tf32_default"), size="gpu", device="cuda")
    assert not v.accepted
    assert R.WRONG_OUTPUT in v.codes, v.codes


def test_drift_after_the_timing_loop_is_caught():
    """Row 19: correct for every trial and the repeat, wrong from then on (the timing loop and
    the drift trials after it)."""
    problem = loader.load_one(RELU)
    plan = make_plan(problem, device="cuda", size="cpu")
    honest_calls = len(plan.trials) + 1  # every trial, then the determinism repeat
    source = candidate("r19_drift_after_four_calls", HONEST_CALLS=str(honest_calls))
    v = evaluate(problem, source, size="cpu", device="cuda")
    assert not v.accepted
    assert R.DRIFT in v.codes, v.codes
    assert R.WRONG_OUTPUT not in v.codes, "the trials before timing should have passed"
    assert v.correctness.checks["no_drift"] is False
