"""Real NVML while a matmul loop runs (skipped without CUDA or without nvidia-ml-py)."""

from __future__ import annotations

import time

import pytest
import torch

pytest.importorskip("pynvml", reason="nvidia-ml-py is not installed (the gpu extra)")

from kernelloop.feedback.nvml import NvmlAdapter, sampler_for_cuda_device  # noqa: E402


@pytest.fixture(scope="module")
def adapter():
    a = NvmlAdapter()
    why = a.available()
    if why is not None:
        pytest.skip(why)
    yield a
    a.close()


def test_a_busy_gpu_draws_power_and_clocks_up(adapter):
    sampler, why = sampler_for_cuda_device(0, interval_s=0.01, adapter=adapter)
    assert why is None
    x = torch.randn(4096, 4096, device="cuda", dtype=torch.float16)
    torch.cuda.synchronize()
    calls = 0
    with sampler:
        end = time.perf_counter() + 1.0
        while time.perf_counter() < end:
            for _ in range(10):
                x @ x
            calls += 10
            torch.cuda.synchronize()
    r = sampler.report(calls=calls)
    assert r.samples >= 20 and 0.9 < r.duration_s < 5
    assert r.gpu  # NVML's device name, e.g. "NVIDIA H100 80GB HBM3"
    assert r.sm_clock_mhz_max and r.sm_clock_mhz_max > 500
    assert r.power_avg_w and r.power_avg_w > 30  # an idle H100 draws ~70 W, a busy one far more
    assert r.energy_j and r.energy_j > 10 and r.energy_per_call_j > 0
    assert r.gpu_util_avg_pct is not None and r.gpu_util_avg_pct > 50
    assert r.memory_used_max_bytes and r.memory_used_max_bytes > x.numel() * 2
    assert "gpu_idle" not in r.throttle_reasons
    print(r.to_dict())  # for the GPU log: clocks, power and throttling as this board reports them
