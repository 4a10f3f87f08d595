"""The Judge's summary: right class and numbers for hand-built verdicts, and never over budget."""

from __future__ import annotations

import pytest

from kernelloop.feedback import gpu_specs, roofline
from kernelloop.feedback.static_resources import StaticResources
from kernelloop.feedback.summary import judge_summary
from kernelloop.sandbox.stats import bootstrap_ratio, summarize
from kernelloop.sandbox.verdict import (
    CorrectnessResult,
    Reason,
    TimingResult,
    TrialResult,
    Verdict,
)

H100 = "NVIDIA H100 80GB HBM3"
SPEC = gpu_specs.lookup(H100)

# 64 M float32 elements in and out: 512 MiB of compulsory traffic, no FLOPs (an elementwise op).
COPY = roofline.Work(flops=0.0, bytes=2 * 64 * 2**20 * 4, flops_source="none")
# An 8192^3 fp16 matmul: 1.1 TFLOP on 384 MiB.
MATMUL = roofline.Work(flops=2 * 8192**3, bytes=3 * 8192**2 * 2, flops_source="counted")
# 4 KiB in and out: nothing for any roof to do.
TINY = roofline.Work(flops=0.0, bytes=8192, flops_source="none")


def _verdict(work, dtype, median_ms, *, eager_ms=None, problem="level1/x", nvml=None, gpu=H100):
    times = [median_ms * (1 + 0.002 * (i % 5 - 2)) for i in range(100)]
    eager = [(eager_ms or 2 * median_ms) * (1 + 0.001 * (i % 3)) for i in range(100)]
    s = median_ms / 1e3
    spec = gpu_specs.lookup(gpu)
    bps, fps = roofline.achieved(work, s)
    t = TimingResult(
        gpu=gpu,
        candidate=summarize(times),
        eager=summarize(eager),
        compiled=None,
        speedup_eager=bootstrap_ratio(eager, times),
        speedup_compile=None,
        order=["eager"],
        roofline_floor_ms=roofline.floor_seconds(work, spec, dtype) * 1e3 if spec else None,
        achieved_gbps=bps / 1e9,
        achieved_tflops=fps / 1e12,
        fraction_of_peak=roofline.fraction_of_roofline(work, spec, dtype, s) if spec else None,
        nvml=nvml,
    )
    return Verdict(
        accepted=True,
        reasons=[],
        problem_id=problem,
        size="gpu",
        backend="triton",
        device=gpu,
        sandbox="bwrap",
        correctness=CorrectnessResult(passed=True, trials=[TrialResult("main", True)]),
        timing=t,
    )


def test_memory_bound_names_bandwidth_and_its_fraction_of_peak():
    measured = 0.25  # ms: 2.15 TB/s
    text = judge_summary(_verdict(COPY, "float32", measured))
    gbps = COPY.bytes / (measured / 1e3) / 1e9
    assert "memory-bound on H100 SXM" in text
    assert f"{gbps / 1e3:.3g} TB/s = {gbps / SPEC.mem_bandwidth_gbs:.0%} of 3.35 TB/s" in text
    assert "median 0.25 ms (IQR" in text and "n=100" in text
    assert "TFLOP/s" not in text  # no FLOPs: no compute line
    assert roofline.classify(COPY, SPEC, "float32", measured / 1e3) == "memory-bound"


def test_compute_bound_names_tflops_against_the_tensor_core_peak():
    measured = 1.5  # ms: 733 TFLOP/s of 989.5
    text = judge_summary(_verdict(MATMUL, "float16", measured))
    tflops = MATMUL.flops / (measured / 1e3) / 1e12
    assert "compute-bound on H100 SXM" in text
    # fp16 and bf16 have one peak on H100, so the dtype the verdict lacks is not needed
    assert f"{tflops:.3g} TFLOP/s = {tflops / 989.5:.0%} of 989.5 TFLOP/s" in text
    assert "float16/bfloat16" in text
    assert text.index("compute:") < text.index("memory:")  # the binding roof first


def test_an_explicit_dtype_and_work_are_used_as_given():
    v = _verdict(MATMUL, "float16", 1.5)
    text = judge_summary(v, work=MATMUL, dtype="torch.bfloat16")
    assert "989.5 TFLOP/s bfloat16 tensor-core peak" in text


def test_latency_bound_is_explained():
    text = judge_summary(_verdict(TINY, "float32", 0.02))
    assert "latency-bound on H100 SXM: at 0.012% of the roofline" in text
    assert "launch overhead" in text and "median 20 us" in text


def test_cpu_verdict_says_timing_is_unavailable():
    v = Verdict(
        accepted=True,
        reasons=[],
        problem_id="level1/01_relu",
        size="cpu",
        backend="triton",
        device="cpu (Triton interpreter)",
        sandbox="process",
        correctness=CorrectnessResult(
            passed=True, trials=[TrialResult("a", True), TrialResult("b", True)]
        ),
        timing_note="no CUDA GPU here: correctness only, timing skipped",
    )
    text = judge_summary(v)
    assert "timing unavailable (no CUDA GPU here" in text
    assert "correctness: passed (2/2 trials)" in text
    assert "bottleneck" not in text and "GB/s" not in text and " ms" not in text


def test_rejections_come_first():
    v = _verdict(COPY, "float32", 0.25)
    v.accepted = False
    v.reasons = [Reason("WALL_CLOCK_MISMATCH", "events say 0.25 ms per call, outside 2 ms")]
    lines = judge_summary(v).splitlines()
    assert lines[0].endswith("rejected") and lines[1].startswith("reason WALL_CLOCK_MISMATCH")


def test_unknown_gpus_get_rates_without_percentages():
    v = _verdict(COPY, "float32", 0.25, gpu="NVIDIA Mystery GPU")
    text = judge_summary(v)
    assert "unknown GPU 'NVIDIA Mystery GPU'" in text and "TB/s" in text
    assert "of the roofline" not in text and "DRAM peak" not in text


STATIC = StaticResources(
    kernel="_softmax_kernel",
    backend="triton",
    arch="sm_90a",
    registers_per_thread=168,
    spill_stores_bytes=96,
    spill_loads_bytes=128,
    shared_bytes=32768,
    local_bytes=96,
    source="ptxas-log",
)
NCU = {
    "dram__throughput.avg.pct_of_peak_sustained_elapsed": (64.2, "%"),
    "sm__throughput.avg.pct_of_peak_sustained_elapsed": (31.5, "%"),
    "sm__warps_active.avg.pct_of_peak_sustained_active": (18.7, "%"),
    "gpu__time_duration.sum": (251.3, "usecond"),
    "smsp__average_warps_issue_stalled_long_scoreboard_per_issue_active.ratio": (14.2, ""),
    "smsp__average_warps_issue_stalled_barrier_per_issue_active.ratio": (3.1, ""),
    "smsp__average_warps_issue_stalled_selected_per_issue_active.ratio": (99.0, ""),
    "smsp__average_warps_issue_stalled_math_pipe_throttle_per_issue_active.ratio": (6.0, ""),
    "smsp__average_warps_issue_stalled_wait_per_issue_active.ratio": (1.0, ""),
    "smsp__average_warps_issue_stalled_drain_per_issue_active.ratio": ("n/a", ""),
    "launch__occupancy_limit_registers": (1.0, "block"),
    "launch__occupancy_limit_shared_mem": (3.0, "block"),
    "launch__occupancy_limit_warps": (2.0, "block"),
    "launch__grid_size": (8192.0, ""),
}
NVML = {
    "samples": 80,
    "sm_clock_mhz_min": 1590.0,
    "sm_clock_mhz_avg": 1755.0,
    "sm_clock_mhz_max": 1980.0,
    "power_avg_w": 612.0,
    "power_max_w": 700.0,
    "energy_per_call_j": 612.0 * 0.25e-3,  # power x median time
    "temperature_max_c": 71.0,
    "throttled": True,
    "throttle_reasons": ["sw_power_cap"],
}


def test_static_ncu_nvml_and_previous_best_are_reported():
    previous = _verdict(COPY, "float32", 0.30, eager_ms=0.5)
    v = _verdict(COPY, "float32", 0.25, eager_ms=0.5, nvml=NVML)
    text = judge_summary(v, static=STATIC, ncu=NCU, previous=previous, budget_chars=5000)
    assert "168 registers/thread (<= 12 warps/SM by registers)" in text  # 65536 // (168 x 32)
    assert "SPILLS 96 B stores/128 B loads" in text and "32768 B shared/block" in text
    assert "DRAM throughput 64.2%" in text and "achieved occupancy 18.7%" in text
    assert "long_scoreboard 14.2, math_pipe_throttle 6, barrier 3.1" in text
    assert "occupancy limited by registers: 1 blocks/SM" in text
    assert "selected" not in text  # issuing is not a stall
    assert "THROTTLED (sw_power_cap)" in text and "SM clock 1590-1980 MHz" in text
    assert "612 W avg, 700 W max; 153 mJ per call" in text
    assert "vs previous best: 0.3 ms -> 0.25 ms, 1.20x faster (-16.7% time)" in text
    assert "vs eager 1.67x -> 2.00x" in text


def test_a_change_inside_the_spread_says_so():
    previous = _verdict(COPY, "float32", 0.2501)
    text = judge_summary(_verdict(COPY, "float32", 0.25), previous=previous)
    assert "within the spread" in text


def test_static_resources_without_numbers_show_why():
    res = StaticResources("k", "triton", "sm_90a", notes=["needs a launch to know argument types"])
    text = judge_summary(_verdict(COPY, "float32", 0.25), static=[res])
    assert "resources of k: unknown (needs a launch" in text


@pytest.mark.parametrize("budget", [0, 5, 40, 90, 200, 400, 700, 1200])
def test_the_budget_is_never_exceeded_and_the_least_important_go_first(budget):
    previous = _verdict(COPY, "float32", 0.30)
    v = _verdict(COPY, "float32", 0.25, nvml=NVML)
    v.timing.notes = ["a note " * 40, "another note"]
    full = judge_summary(v, static=STATIC, ncu=NCU, previous=previous, budget_chars=10_000)
    text = judge_summary(v, static=STATIC, ncu=NCU, previous=previous, budget_chars=budget)
    assert len(text) <= budget
    assert len(full) > 700  # the smaller budgets all had to cut something
    if budget >= 400:
        assert "memory-bound" in text and "median" in text  # priority 0 survives
    if 400 <= budget < len(full):
        assert "note:" not in text  # the least important go first
    if 700 <= budget < len(full):
        assert "registers/thread" in text and "THROTTLED" in text
    if budget >= len(full):
        assert text == full


def test_hostile_nvml_values_do_not_break_the_summary():
    v = _verdict(COPY, "float32", 0.25, nvml={"samples": 3, "power_avg_w": "lots", "throttled": 1})
    assert "GPU during timing" in judge_summary(v)
