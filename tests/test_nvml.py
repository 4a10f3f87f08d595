"""NVML sampling on CPU: a scripted fake adapter for the sampler, a fake pynvml for the adapter.

Real NVML is never touched here (tests/gpu/test_nvml_gpu.py samples a real GPU). The fakes make
the aggregates exact however many samples the background thread happens to take.
"""

from __future__ import annotations

import sys
import time
import types

import pytest

from kernelloop.feedback import gpu_specs
from kernelloop.feedback import nvml as nv
from kernelloop.sandbox import stats, timing_report, worker
from kernelloop.sandbox.verdict import TimingResult, Verdict


class FakeAdapter:
    """Readings by call count: the first sample sees an idle GPU at 1500 MHz, every later one a
    busy GPU at 1980 MHz capped by power. The energy counter moves 2500 mJ per read."""

    def __init__(self, *, energy=True, power=True, reasons=("sw_power_cap",)):
        self.energy, self.power, self.reasons = energy, power, reasons
        self.n_clock = self.n_energy = 0

    def available(self):
        return None

    def name(self, i):
        return "Fake H100"

    def total_energy_mj(self, i):
        if not self.energy:
            return None
        self.n_energy += 1
        return 1_000_000 + 2500 * (self.n_energy - 1)

    def power_mw(self, i):
        return 300_000 if self.power else None

    def clocks(self, i):
        self.n_clock += 1
        return (1500 if self.n_clock == 1 else 1980, 2619)

    def utilization(self, i):
        return (100, 40)

    def temperature_c(self, i):
        return 50 + min(self.n_clock, 20)

    def memory_used_bytes(self, i):
        return 1 << 30

    def throttle_reasons(self, i):
        return ["gpu_idle"] if self.n_clock <= 1 else ["gpu_idle", *self.reasons]


def _sample(adapter, seconds=0.05, interval_s=0.005):
    with nv.NvmlSampler(adapter, device=0, interval_s=interval_s) as s:
        time.sleep(seconds)
    return s


def test_sampler_aggregates_a_window():
    s = _sample(FakeAdapter())
    r = s.report(calls=10)
    assert r.samples >= 3 and r.samples == len(s.samples)  # entry, exit and the thread's
    assert r.duration_s >= 0.05 and r.gpu == "Fake H100" and r.device == 0
    assert r.energy_source == "counter" and r.energy_j == pytest.approx(2.5)  # two reads
    assert r.calls == 10 and r.energy_per_call_j == pytest.approx(0.25)
    assert (r.sm_clock_mhz_min, r.sm_clock_mhz_max) == (1500, 1980)
    assert 1500 < r.sm_clock_mhz_avg < 1980 and r.mem_clock_mhz == 2619
    assert r.power_avg_w == r.power_max_w == 300 and r.gpu_util_avg_pct == 100
    assert r.temperature_max_c == 50 + min(r.samples, 20) and r.memory_used_max_bytes == 1 << 30
    assert r.throttled and r.throttle_reasons == ["sw_power_cap"]  # gpu_idle is not throttling
    assert nv.NvmlReport.from_dict(r.to_dict()) == r


def test_energy_falls_back_to_the_power_integral():
    r = _sample(FakeAdapter(energy=False)).report(calls=4)
    assert r.energy_source == "power-integral"
    assert r.energy_j == pytest.approx(300 * r.duration_s, rel=1e-6)  # constant 300 W
    assert r.energy_per_call_j == pytest.approx(r.energy_j / 4)


def test_energy_per_call_from_power_and_the_median_when_the_window_held_other_work():
    r = _sample(FakeAdapter()).report(seconds_per_call=2e-3)  # a 2 ms kernel at 300 W
    assert r.calls is None and r.energy_per_call_j == pytest.approx(0.6)
    assert r.energy_j == pytest.approx(2.5)  # the window's counter reading stays as it was


def test_idle_alone_is_not_throttling_and_missing_readings_are_none():
    r = _sample(FakeAdapter(energy=False, power=False, reasons=())).report()
    assert not r.throttled and r.throttle_reasons == []
    assert r.power_avg_w is None and r.energy_j is None and r.energy_source is None
    assert r.calls is None and r.energy_per_call_j is None


def test_a_failing_board_does_not_break_the_block():
    class Broken(FakeAdapter):
        def clocks(self, i):
            raise RuntimeError("GPU is lost")

    with nv.NvmlSampler(Broken(), interval_s=0.005) as s:
        time.sleep(0.02)
    r = s.report()
    assert r.samples == 0 and "GPU is lost" in s.errors[0]
    assert r.sm_clock_mhz_avg is None and not r.throttled


def test_throttle_masks_decode_to_names():
    assert nv.decode_throttle_reasons(0) == []
    assert nv.decode_throttle_reasons(0x1 | 0x4 | 0x40) == [
        "gpu_idle",
        "sw_power_cap",
        "hw_thermal",
    ]
    assert nv.decode_throttle_reasons(0x80 | 0x1000) == ["hw_power_brake", "bit_0x1000"]
    assert set(nv.THROTTLE_REASONS.values()) >= {
        "sw_power_cap", "hw_slowdown", "sw_thermal", "hw_thermal", "hw_power_brake", "gpu_idle",
        "applications_clocks_setting", "sync_boost", "display_clocks",
    }  # fmt: skip


# --- the adapter over a fake pynvml ---------------------------------------------------------------


class _NVMLError(Exception):
    pass


def _fake_pynvml(*, count=1, throttle_getter="nvmlDeviceGetCurrentClocksEventReasons"):
    m = types.ModuleType("pynvml")
    m.NVMLError = _NVMLError
    m.nvmlInit = lambda: None
    m.nvmlShutdown = lambda: None
    m.nvmlDeviceGetCount = lambda: count
    m.nvmlDeviceGetHandleByIndex = lambda i: f"handle{i}"
    m.nvmlDeviceGetName = lambda h: b"NVIDIA H100 80GB HBM3"
    m.nvmlDeviceGetUUID = lambda h: "GPU-ABCD-" + h[-1]
    m.nvmlDeviceGetPowerUsage = lambda h: 312_345
    m.nvmlDeviceGetClockInfo = lambda h, kind: {1: 1980, 2: 2619}[kind]
    m.nvmlDeviceGetTemperature = lambda h, sensor: 61

    def unsupported(h):
        raise _NVMLError("Not Supported")

    m.nvmlDeviceGetTotalEnergyConsumption = unsupported
    m.nvmlDeviceGetUtilizationRates = lambda h: types.SimpleNamespace(gpu=97, memory=55)
    m.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(used=123, total=456)
    setattr(m, throttle_getter, lambda h: 0x1 | 0x4)
    return m


def test_adapter_reads_through_pynvml(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", _fake_pynvml(count=2))
    a = nv.NvmlAdapter()
    assert a.available() is None and a.device_count() == 2
    assert a.name(0) == "NVIDIA H100 80GB HBM3" and a.power_mw(0) == 312_345
    assert a.total_energy_mj(0) is None  # NVMLError -> unsupported -> None
    assert a.clocks(1) == (1980, 2619) and a.temperature_c(0) == 61
    assert a.utilization(0) == (97, 55) and a.memory_used_bytes(0) == 123
    assert a.throttle_reasons(0) == ["gpu_idle", "sw_power_cap"]
    assert a.index_for_uuid("abcd-1") == 1 and a.index_for_uuid("nope") is None
    assert nv.largest_gpu_memory_bytes(a) == 456  # the preflight's GPU size check


def test_no_nvml_means_no_gpu_memory_figure(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)
    assert nv.largest_gpu_memory_bytes(nv.NvmlAdapter()) is None


def test_adapter_falls_back_to_the_pre_535_throttle_getter(monkeypatch):
    fake = _fake_pynvml(throttle_getter="nvmlDeviceGetCurrentClocksThrottleReasons")
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    assert nv.NvmlAdapter().throttle_reasons(0) == ["gpu_idle", "sw_power_cap"]


def test_adapter_says_why_it_is_unavailable(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml -> ImportError
    assert "nvidia-ml-py" in nv.NvmlAdapter().available()
    monkeypatch.setitem(sys.modules, "pynvml", _fake_pynvml(count=0))
    assert "no NVIDIA GPU" in nv.NvmlAdapter().available()
    broken = _fake_pynvml()

    def fail():
        raise _NVMLError("Driver Not Loaded")

    broken.nvmlInit = fail
    monkeypatch.setitem(sys.modules, "pynvml", broken)
    assert "Driver Not Loaded" in nv.NvmlAdapter().available()
    sampler, why = nv.sampler_for_cuda_device()
    assert sampler is None and "Driver Not Loaded" in why


def test_the_worker_times_without_nvml_when_it_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)
    sampler, why = worker._nvml_sampler()
    assert sampler is None and "nvidia-ml-py" in why


# --- into the verdict -----------------------------------------------------------------------------


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


def _frames(timing_extra: dict) -> list[tuple[float, dict]]:
    return [
        (999.0, {"type": "hello"}),
        (1000.0, {"type": "wall_begin", "calls": 100}),
        (1000.1, {"type": "wall_end", "calls": 100}),
        (1001.0, {"type": "timing", "times_ms": [1.0] * 50, "patched": [], **timing_extra}),
    ]


BASELINES = {"results": {"eager": [2.0] * 20}, "order": ["eager"]}
WORK = {"flops": 0.0, "bytes": 2 * 2**30, "flops_source": "none"}


@pytest.fixture
def h100(monkeypatch):
    monkeypatch.setattr(
        gpu_specs, "current", lambda device=0: gpu_specs.lookup("NVIDIA H100 80GB HBM3")
    )


def test_throttled_timing_gets_a_note_and_keeps_the_report(h100):
    report = _sample(FakeAdapter()).report().to_dict()
    v = _verdict()
    timing_report.attach(v, _frames({"nvml": report}), BASELINES, WORK, "float32")
    assert not v.reasons and v.timing.nvml == report
    assert "timing ran throttled: sw_power_cap" in v.timing.notes
    again = Verdict.from_json(v.to_json())
    assert again == v and again.timing.nvml["throttle_reasons"] == ["sw_power_cap"]


def test_unthrottled_and_unavailable_nvml(h100):
    quiet = _sample(FakeAdapter(reasons=())).report().to_dict()
    v = _verdict()
    timing_report.attach(v, _frames({"nvml": quiet}), BASELINES, WORK, "float32")
    assert v.timing.nvml["throttled"] is False
    assert not any("throttled" in n or "NVML" in n for n in v.timing.notes)
    v = _verdict()
    missing = {"nvml": None, "nvml_unavailable": "nvidia-ml-py is not installed"}
    timing_report.attach(v, _frames(missing), BASELINES, WORK, "float32")
    assert v.timing.nvml is None
    assert "no NVML readings: nvidia-ml-py is not installed" in v.timing.notes


def test_verdicts_stored_before_the_nvml_field_still_load():
    times = [1.0, 1.1, 0.9]
    v = _verdict()
    v.timing = TimingResult(
        gpu="X",
        candidate=stats.summarize(times),
        eager=stats.summarize(times),
        compiled=None,
        speedup_eager=stats.bootstrap_ratio(times, times),
        speedup_compile=None,
        order=["eager"],
    )
    old = v.to_dict()
    del old["timing"]["nvml"]
    assert Verdict.from_dict(old).timing.nvml is None
