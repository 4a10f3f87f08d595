"""The GPU timing path's logic, exercised on CPU with fake clocks and recorded frames.

Real CUDA timing is covered by tests/gpu; these make sure the arithmetic and the rejections
(roofline floor, outside-clock mismatch, replaced timers) are right without a GPU.
"""

from __future__ import annotations

import time

import pytest
import torch

from kernelloop.feedback import gpu_specs
from kernelloop.sandbox import reasons, timing, timing_report
from kernelloop.sandbox.verdict import Verdict


class _FakeEvent:
    def __init__(self, enable_timing: bool = True):
        self.t = 0.0

    def record(self):
        self.t = time.perf_counter()

    def synchronize(self):
        pass


def _fake_clock() -> timing.Clock:
    return timing.Clock(lambda: None, _FakeEvent, lambda a, b: (b.t - a.t) * 1e3)


class _NoFlush:
    nbytes = 0

    def flush(self):
        pass


def test_benchmark_respects_budgets_and_gives_fresh_inputs():
    seen: list[int] = []
    template = [torch.ones(4), torch.arange(3)]
    gen = torch.Generator().manual_seed(0)

    def fn(x, idx):
        seen.append(x.data_ptr())
        time.sleep(0.001)
        return x

    times = timing.benchmark(
        fn,
        lambda: timing.fresh_inputs(template, gen),
        clock=_fake_clock(),
        flusher=_NoFlush(),
        budget_ms=30,
        warmup_ms=5,
    )
    assert timing.MIN_ITERS <= len(times) <= 40
    assert all(t >= 1.0 for t in times)  # each call slept 1 ms inside the window
    fresh = timing.fresh_inputs(template, gen)
    assert not torch.equal(fresh[0], template[0])  # new values, not a replay
    assert torch.equal(fresh[1], template[1]) and fresh[1].data_ptr() != template[1].data_ptr()


def _verdict() -> Verdict:
    return Verdict(
        accepted=False,
        reasons=[],
        problem_id="p",
        size="gpu",
        backend="triton",
        device="NVIDIA H100 80GB HBM3",
        sandbox="process",
    )


def _frames(times, wall_ms_per_call, calls=100):
    start = 1000.0
    return [
        (start - 1, {"type": "hello"}),
        (start, {"type": "wall_begin", "calls": calls}),
        (start + wall_ms_per_call * calls / 1e3, {"type": "wall_end", "calls": calls}),
        (start + 1, {"type": "timing", "times_ms": times, "patched": []}),
    ]


@pytest.fixture
def h100(monkeypatch):
    monkeypatch.setattr(
        gpu_specs, "current", lambda device=0: gpu_specs.lookup("NVIDIA H100 80GB HBM3")
    )


def _baselines(ms: float) -> dict:
    return {
        "results": {"eager": [ms * (1 + 0.01 * i) for i in range(20)], "compile": [ms * 0.9] * 20},
        "order": ["compile", "eager"],
    }


WORK = {"flops": 0.0, "bytes": 2 * 2**30, "flops_source": "none"}  # 2 GiB moved


def test_honest_timing_gets_speedup_intervals(h100):
    v = _verdict()
    times = [1.0 + 0.01 * (i % 5) for i in range(50)]
    timing_report.attach(v, _frames(times, 1.0), _baselines(2.0), WORK, "float32")
    assert not v.reasons, v.reasons
    t = v.timing
    assert t.speedup_eager.point == pytest.approx(t.eager.median / t.candidate.median)
    assert 1.8 < t.speedup_eager.low < t.speedup_eager.point < t.speedup_eager.high < 2.4
    assert t.speedup_compile is not None and t.compiled.median == pytest.approx(1.8)
    assert t.achieved_gbps == pytest.approx(2 * 2**30 / t.candidate.median / 1e6, rel=1e-6)
    assert 0 < t.fraction_of_peak < 1


def test_faster_than_the_hardware_allows_is_rejected(h100):
    v = _verdict()
    times = [0.01] * 50  # 2 GiB in 10 µs would be 200 TB/s
    timing_report.attach(v, _frames(times, 0.01), _baselines(2.0), WORK, "float32")
    assert reasons.BELOW_ROOFLINE_FLOOR in v.codes


def test_events_contradicted_by_the_outside_clock_are_rejected(h100):
    v = _verdict()
    times = [1.0] * 50  # events claim 1 ms per call; the orchestrator saw 10 ms per call
    timing_report.attach(v, _frames(times, 10.0), _baselines(2.0), WORK, "float32")
    assert reasons.WALL_CLOCK_MISMATCH in v.codes


def test_timers_replaced_during_timing_are_rejected(h100):
    v = _verdict()
    frames = _frames([1.0] * 50, 1.0)
    frames[-1][1]["patched"] = ["torch.cuda.synchronize"]
    timing_report.attach(v, frames, _baselines(2.0), WORK, "float32")
    assert reasons.FUNCTION_PATCHED in v.codes


def test_missing_compile_baseline_is_a_note_not_a_failure(h100):
    v = _verdict()
    base = _baselines(2.0)
    base["results"]["compile"] = "torch.compile failed: no C compiler"
    timing_report.attach(v, _frames([1.0] * 50, 1.0), base, WORK, "float32")
    assert not v.reasons and v.timing.compiled is None and v.timing.speedup_compile is None
    assert any("torch.compile failed" in n for n in v.timing.notes)


# --- baselines reused within their TTL ------------------------------------------------------------
def _baseline_common() -> dict:
    from kernelloop.kernelbench import loader

    problem = loader.load_one("level1/01_relu")
    return {
        "problem_path": str(problem.path),
        "dtype": "float32",
        "variants": {"main": {"batch_size": 8192, "dim": 32768}},
        "allow_tf32": False,
    }


def test_baselines_are_timed_once_per_problem_gpu_and_software_within_the_ttl(monkeypatch):
    from kernelloop import settings

    measured = []

    def measure(common, private, cfg, timeout_s):
        measured.append(common["variants"]["main"])
        return {"results": {"eager": [1.0, 1.1], "compile": [0.9]}, "order": ["eager"]}

    monkeypatch.setattr(timing_report, "_measure_baselines", measure)
    monkeypatch.setattr(timing_report, "_baselines", {})
    common, private = _baseline_common(), None
    with settings.override(baseline_ttl_s=600) as cfg:
        first = timing_report.time_baselines(common, private, cfg, 10, gpu_name="H100")
        again = timing_report.time_baselines(common, private, cfg, 10, gpu_name="H100")
        assert len(measured) == 1 and "reused_after_s" not in first
        assert again["results"] == first["results"] and again["reused_after_s"] >= 0
        # another GPU model, or another size, is timed afresh
        timing_report.time_baselines(common, private, cfg, 10, gpu_name="A100")
        bigger = {**common, "variants": {"main": {"batch_size": 16384, "dim": 32768}}}
        timing_report.time_baselines(bigger, private, cfg, 10, gpu_name="H100")
        assert len(measured) == 3
    with settings.override(baseline_ttl_s=0) as cfg:
        timing_report.time_baselines(common, private, cfg, 10, gpu_name="H100")
        assert len(measured) == 4  # TTL 0: every evaluation times its own baselines
    # past the TTL they are measured again
    with settings.override(baseline_ttl_s=600) as cfg:
        later = time.monotonic() + 601
        monkeypatch.setattr(timing_report.time, "monotonic", lambda: later)
        timing_report.time_baselines(common, private, cfg, 10, gpu_name="H100")
        assert len(measured) == 5
    # nothing is written where a candidate could forge it: the cache is this process's memory
    assert not list(settings.get().cache_dir.glob("baselines*"))


def test_failed_baselines_are_not_kept(monkeypatch):
    from kernelloop import settings

    calls = []

    def measure(common, private, cfg, timeout_s):
        calls.append(1)
        return {"error": "baseline timing failed: boom", "order": ["eager"]}

    monkeypatch.setattr(timing_report, "_measure_baselines", measure)
    monkeypatch.setattr(timing_report, "_baselines", {})
    with settings.override(baseline_ttl_s=600) as cfg:
        for _ in range(2):
            timing_report.time_baselines(_baseline_common(), None, cfg, 10, gpu_name="H100")
    assert len(calls) == 2


def test_worker_reported_spans_are_numbers_only():
    from kernelloop.sandbox import stopwatch

    spans = {"candidate.forward": 1.0}
    stopwatch.add(spans, "candidate", {"forward": 0.5, "evil": "x" * 10, "neg": -1, 3: 2.0})
    stopwatch.add(spans, "candidate", ["not", "a", "dict"])
    assert spans == {"candidate.forward": 1.5}
    with stopwatch.timed(spans, "compare.read"):
        pass
    assert spans["compare.read"] >= 0
