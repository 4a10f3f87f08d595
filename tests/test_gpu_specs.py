"""GPU datasheet lookup, generic estimates and peak rates (no GPU needed)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from kernelloop.feedback import gpu_specs
from kernelloop.feedback.gpu_specs import current, lookup, peak_bandwidth, peak_flops


@pytest.mark.parametrize(
    "device_name, entry",
    [
        ("NVIDIA H100 80GB HBM3", "H100 SXM"),
        ("NVIDIA H100 PCIe", "H100 PCIe"),
        ("NVIDIA H200", "H200 SXM"),
        ("NVIDIA A100-SXM4-80GB", "A100 80GB SXM"),
        ("NVIDIA A100-SXM4-40GB", "A100 40GB"),
        ("NVIDIA A100-PCIE-40GB", "A100 40GB"),
        ("NVIDIA A100 80GB PCIe", "A100 80GB PCIe"),
        ("NVIDIA L40S", "L40S"),
        ("NVIDIA L4", "L4"),
        ("NVIDIA A10G", "A10G"),
        ("NVIDIA GeForce RTX 4090", "RTX 4090"),
        ("NVIDIA GeForce RTX 3090", "RTX 3090"),
        ("Tesla T4", "T4"),
    ],
)
def test_lookup_matches_torch_device_names(device_name, entry):
    spec = lookup(device_name)
    assert spec is not None and spec.name == entry and not spec.generic


@pytest.mark.parametrize(
    "device_name",
    [
        "NVIDIA H100 NVL",
        "NVIDIA GH200 480GB",
        "NVIDIA L40",
        "NVIDIA A10",
        "NVIDIA B200",
        "NVIDIA GeForce RTX 3090 Ti",
        "NVIDIA GeForce RTX 4090 D",
        "AMD Instinct MI300X",
    ],
)
def test_lookup_does_not_guess_neighbouring_models(device_name):
    # A neighbour's bandwidth would move the roofline floor: better generic than wrong.
    assert lookup(device_name) is None


def test_datasheet_figures_are_dense_and_consistent():
    h100 = lookup("NVIDIA H100 80GB HBM3")
    assert (h100.sms, h100.compute_capability, h100.l2_bytes) == (132, (9, 0), 50 * 2**20)
    assert h100.fp16_tflops == 989.5 and h100.fp8_tflops == 1979  # not the 2:4 sparse 1979/3958
    assert lookup("NVIDIA H200").mem_bandwidth_gbs == 4800
    assert lookup("Tesla T4").fp8_tflops is None
    for spec in gpu_specs._SPECS.values():
        assert spec.tf32_tflops >= spec.fp32_tflops
        assert spec.fp16_tflops >= spec.tf32_tflops and spec.int8_tops >= spec.fp16_tflops
        assert spec.fp8_tflops is None or spec.fp8_tflops >= spec.fp16_tflops
        assert spec.regs_per_sm == 65536 and spec.smem_per_sm_bytes >= 64 * 1024


def test_peak_flops_by_dtype():
    a100 = lookup("NVIDIA A100-SXM4-80GB")
    assert peak_flops(a100, torch.float32) == pytest.approx(156e12)
    assert peak_flops(a100, torch.float32, tensor_cores=False) == pytest.approx(19.5e12)
    assert peak_flops(a100, torch.bfloat16) == pytest.approx(312e12)
    assert peak_flops(a100, torch.float8_e4m3fn) == pytest.approx(312e12)  # no FP8: FP16 rate
    assert peak_flops(a100, torch.int8) == pytest.approx(624e12)
    assert peak_flops(a100, torch.float64) == pytest.approx(19.5e12)
    h100 = lookup("NVIDIA H100 80GB HBM3")
    assert peak_flops(h100, torch.float8_e5m2) == pytest.approx(1979e12)
    assert peak_bandwidth(h100) == pytest.approx(3.35e12)


def _fake_props(name, **extra):
    base = dict(
        name=name,
        major=9,
        minor=0,
        multi_processor_count=132,
        L2_cache_size=50 * 2**20,
        shared_memory_per_multiprocessor=233472,
        regs_per_multiprocessor=65536,
    )
    return SimpleNamespace(**{**base, **extra})


def test_current_uses_the_datasheet_for_known_devices(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda d: _fake_props("NVIDIA H200"))
    assert current(0).name == "H200 SXM"


def test_current_estimates_unknown_devices_on_the_high_side(monkeypatch):
    props = _fake_props(
        "NVIDIA H100 NVL", clock_rate=1_785_000, memory_clock_rate=2_619_000, memory_bus_width=6144
    )
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda d: props)
    spec = current(0)
    assert spec.generic and spec.name == "NVIDIA H100 NVL" and spec.compute_capability == (9, 0)
    assert spec.mem_bandwidth_gbs == pytest.approx(2 * 2.619e9 * 6144 / 8 / 1e9)
    assert spec.fp16_tflops == pytest.approx(132 * 1.785e9 * 4096 / 1e12)  # 965 dense
    assert spec.fp8_tflops == pytest.approx(2 * spec.fp16_tflops)
    assert spec.l2_bytes == 50 * 2**20 and spec.smem_per_sm_bytes == 233472


def test_current_without_clock_or_memory_attributes_errs_high(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    props = _fake_props("NVIDIA Mystery", major=8, minor=0)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda d: props)
    spec = current()
    assert spec.generic and spec.mem_bandwidth_gbs == 10_000 and spec.boost_clock_mhz == 2100
    assert spec.fp16_tflops >= 312  # at least the real A100's rate for the same SM count


def test_current_without_cuda_says_what_to_do(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="lookup"):
        current()
