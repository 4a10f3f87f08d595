"""The evaluator on a real GPU: honest Triton and CUDA candidates are accepted and timed."""

from __future__ import annotations

import pytest
from paths import REPO

from kernelloop import settings
from kernelloop.kernelbench import loader
from kernelloop.sandbox.evaluate import evaluate


@pytest.fixture(autouse=True)
def _short_timing():
    with settings.override(timing_budget_ms=100, warmup_ms=20, compile_baseline=False):
        yield


def test_honest_triton_relu_is_accepted_and_timed():
    problem = loader.load_one("level1/01_relu")
    v = evaluate(problem, loader.solution_path(problem).read_text(), size="gpu")
    assert v.accepted, v.reasons
    t = v.timing
    assert t is not None and t.candidate.n >= 10 and t.eager.n >= 10
    assert t.speedup_eager.low <= t.speedup_eager.point <= t.speedup_eager.high
    assert t.roofline_floor_ms and t.candidate.median >= t.roofline_floor_ms
    assert t.achieved_gbps and t.achieved_gbps > 100  # a relu that moves < 100 GB/s is broken
    assert t.wall_ms_per_call is not None
    # What the driver said when it loaded the relu kernel (one entry per specialisation).
    assert t.kernels and all(k["registers"] > 0 and k["spills"] == 0 for k in t.kernels)


def test_cuda_backend_candidate_runs_on_gpu():
    problem = loader.load_one("level1/01_relu")
    v = evaluate(problem, (REPO / "examples" / "relu_cuda.py").read_text(), size="gpu")
    assert v.backend == "cuda"
    assert v.accepted, v.reasons
    assert v.timing is not None and v.timing.candidate.median > 0
