"""What the GPU's board said while a kernel ran: power, energy, clocks, temperature, throttling.

:class:`NvmlAdapter` is the only code that imports ``pynvml`` (the ``nvidia-ml-py`` package, in the
``gpu`` extra), lazily, so importing this module needs neither the package nor a GPU. Each reading
is None where the board does not support it. :class:`NvmlSampler` reads the adapter on a
background thread during a ``with`` block and turns the samples into an :class:`NvmlReport`; tests
hand it a fake adapter with scripted readings.

Why it matters for timing: a GPU that hit its power cap or a thermal limit ran at lower clocks, so
the same kernel would time differently on another run; the verdict says so rather than hiding it.
NVML's power reading is an average the driver keeps (over about a second on recent boards), so
short windows blur; the total-energy counter (Volta and later) is exact and preferred for energy.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any

# nvmlClocksEventReason* bits (nvml.h; called ClocksThrottleReason* before driver 535).
THROTTLE_REASONS: dict[int, str] = {
    0x001: "gpu_idle",
    0x002: "applications_clocks_setting",
    0x004: "sw_power_cap",
    0x008: "hw_slowdown",
    0x010: "sync_boost",
    0x020: "sw_thermal",
    0x040: "hw_thermal",
    0x080: "hw_power_brake",
    0x100: "display_clocks",
}
# Not throttling: the GPU waiting for work between launches lowers its clocks too.
IDLE_REASONS = frozenset({"gpu_idle"})

_CLOCK_SM, _CLOCK_MEM, _TEMPERATURE_GPU = 1, 2, 0  # NVML_CLOCK_SM, NVML_CLOCK_MEM, NVML_TEMP_GPU


def decode_throttle_reasons(mask: int) -> list[str]:
    """Names of the bits set in an NVML clocks-event mask; unknown bits as ``bit_0x...``."""
    names = [name for bit, name in THROTTLE_REASONS.items() if mask & bit]
    rest = mask & ~sum(THROTTLE_REASONS)
    return names + ([f"bit_{rest:#x}"] if rest else [])


class NvmlAdapter:
    """Thin wrapper over pynvml: device index in, plain numbers out, None where unsupported."""

    def __init__(self) -> None:
        self._nvml: Any = None
        self._why: str | None = None
        self._tried = False
        self._handles: dict[int, Any] = {}

    def available(self) -> str | None:
        """None when NVML answers, else why not (in words a user can act on)."""
        if not self._tried:
            self._tried = True
            try:
                import pynvml
            except ImportError:
                self._why = "nvidia-ml-py is not installed (pip install 'kernelloop[gpu]')"
                return self._why
            try:
                pynvml.nvmlInit()
                count = pynvml.nvmlDeviceGetCount()
            except Exception as exc:  # NVMLError_LibraryNotFound, _DriverNotLoaded, ...
                self._why = f"NVML did not start: {exc}"
                return self._why
            if count < 1:
                self._why = "NVML sees no NVIDIA GPU"
                return self._why
            self._nvml = pynvml
        return self._why

    def _lib(self):
        why = self.available()
        if why is not None:
            raise RuntimeError(why)
        return self._nvml

    def close(self) -> None:
        if self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            finally:
                self._nvml, self._tried, self._handles = None, False, {}

    def device_count(self) -> int:
        return int(self._lib().nvmlDeviceGetCount())

    def handle(self, i: int):
        if i not in self._handles:
            self._handles[i] = self._lib().nvmlDeviceGetHandleByIndex(i)
        return self._handles[i]

    def _read(self, getter: str, i: int, *args):
        """One NVML query; None when this board or driver does not support it."""
        nvml = self._lib()
        fn = getattr(nvml, getter, None)
        if fn is None:
            return None
        try:
            return fn(self.handle(i), *args)
        except nvml.NVMLError:
            return None

    def name(self, i: int) -> str | None:
        value = self._read("nvmlDeviceGetName", i)
        return value.decode() if isinstance(value, bytes) else value

    def uuid(self, i: int) -> str | None:
        value = self._read("nvmlDeviceGetUUID", i)
        return value.decode() if isinstance(value, bytes) else value

    def power_mw(self, i: int) -> int | None:
        return self._read("nvmlDeviceGetPowerUsage", i)

    def total_energy_mj(self, i: int) -> int | None:
        """Energy since the driver loaded, in millijoules (Volta and later)."""
        return self._read("nvmlDeviceGetTotalEnergyConsumption", i)

    def clocks(self, i: int) -> tuple[int | None, int | None]:
        """(SM clock, memory clock) in MHz."""
        return (
            self._read("nvmlDeviceGetClockInfo", i, _CLOCK_SM),
            self._read("nvmlDeviceGetClockInfo", i, _CLOCK_MEM),
        )

    def temperature_c(self, i: int) -> int | None:
        return self._read("nvmlDeviceGetTemperature", i, _TEMPERATURE_GPU)

    def utilization(self, i: int) -> tuple[int | None, int | None]:
        """(GPU busy %, memory-controller busy %) over the driver's last sample period."""
        rates = self._read("nvmlDeviceGetUtilizationRates", i)
        return (rates.gpu, rates.memory) if rates is not None else (None, None)

    def memory_used_bytes(self, i: int) -> int | None:
        info = self._read("nvmlDeviceGetMemoryInfo", i)
        return info.used if info is not None else None

    def memory_total_bytes(self, i: int) -> int | None:
        info = self._read("nvmlDeviceGetMemoryInfo", i)
        return info.total if info is not None else None

    def throttle_reasons(self, i: int) -> list[str] | None:
        mask = self._read("nvmlDeviceGetCurrentClocksEventReasons", i)
        if mask is None:  # drivers before 535 know only the older name
            mask = self._read("nvmlDeviceGetCurrentClocksThrottleReasons", i)
        return None if mask is None else decode_throttle_reasons(int(mask))

    def index_for_uuid(self, uuid: str) -> int | None:
        """NVML's index of the device with this UUID (torch's ``props.uuid``): CUDA and NVML
        number devices differently when CUDA_VISIBLE_DEVICES is set."""
        want = str(uuid).lower().removeprefix("gpu-")
        for i in range(self.device_count()):
            if (self.uuid(i) or "").lower().removeprefix("gpu-") == want:
                return i
        return None


@dataclasses.dataclass(frozen=True)
class NvmlSample:
    t: float  # time.perf_counter()
    power_mw: int | None
    sm_mhz: int | None
    mem_mhz: int | None
    temperature_c: int | None
    gpu_util_pct: int | None
    mem_util_pct: int | None
    memory_used_bytes: int | None
    reasons: tuple[str, ...] | None


@dataclasses.dataclass
class NvmlReport:
    """Aggregates over one sampled window; every figure is None when the board never gave it."""

    device: int
    gpu: str | None
    duration_s: float
    samples: int
    power_avg_w: float | None
    power_max_w: float | None
    energy_j: float | None
    energy_source: str | None  # "counter" (exact) | "power-integral" (from averaged readings)
    calls: int | None
    energy_per_call_j: float | None
    sm_clock_mhz_min: float | None
    sm_clock_mhz_avg: float | None
    sm_clock_mhz_max: float | None
    mem_clock_mhz: float | None
    temperature_max_c: float | None
    gpu_util_avg_pct: float | None
    mem_util_avg_pct: float | None
    memory_used_max_bytes: int | None
    throttled: bool
    throttle_reasons: list[str]  # seen in any sample, gpu_idle excluded, first seen first

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NvmlReport:
        return cls(**data)


def _per_call(energy_j, calls, power_avg_w, seconds_per_call) -> float | None:
    if energy_j is not None and calls:
        return energy_j / calls
    if power_avg_w is not None and seconds_per_call:
        return power_avg_w * seconds_per_call
    return None


class NvmlSampler:
    """``with NvmlSampler(adapter) as s: work()`` then ``s.report(calls=n)``.

    Reads every ``interval_s`` on a daemon thread (NVML calls release the GIL inside the driver,
    so the timed thread loses little), plus once at entry and once at exit. The energy counter is
    read at entry and exit in the caller's thread, so its difference covers exactly the block.
    """

    def __init__(self, adapter, device: int = 0, interval_s: float = 0.01) -> None:
        self.adapter, self.device, self.interval_s = adapter, device, interval_s
        self.samples: list[NvmlSample] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = self._t1 = 0.0
        self._e0: int | None = None
        self._e1: int | None = None
        self.errors: list[str] = []

    def __enter__(self) -> NvmlSampler:
        self._e0 = self._energy()
        self._t0 = time.perf_counter()
        self._take()
        self._thread = threading.Thread(target=self._loop, name="nvml-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._take()
        self._t1 = time.perf_counter()
        self._e1 = self._energy()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._take()

    def _energy(self) -> int | None:
        try:
            return self.adapter.total_energy_mj(self.device)
        except Exception as exc:
            self.errors.append(f"energy: {exc}")
            return None

    def _take(self) -> None:
        a, d = self.adapter, self.device
        try:
            sm, mem = a.clocks(d)
            gpu_util, mem_util = a.utilization(d)
            reasons = a.throttle_reasons(d)
            sample = NvmlSample(
                t=time.perf_counter(),
                power_mw=a.power_mw(d),
                sm_mhz=sm,
                mem_mhz=mem,
                temperature_c=a.temperature_c(d),
                gpu_util_pct=gpu_util,
                mem_util_pct=mem_util,
                memory_used_bytes=a.memory_used_bytes(d),
                reasons=None if reasons is None else tuple(reasons),
            )
        except Exception as exc:  # a flaky board must not break the timing it watches
            if len(self.errors) < 5:
                self.errors.append(f"{type(exc).__name__}: {exc}")
            return
        self.samples.append(sample)

    def report(self, calls: int | None = None, seconds_per_call: float | None = None) -> NvmlReport:
        """Aggregates of the window, with energy per call from one of two sources.

        ``calls``: calls made in the window, each the only work in it: the window's energy over
        them. ``seconds_per_call``: a call's measured time (the median), for a window that also
        ran other work (cache flushes, fresh inputs between timed calls): average board power
        times that time. The energy counter alone cannot serve short windows: the driver
        updates it every few tens of milliseconds."""
        s = self.samples
        duration = max(self._t1 - self._t0, 0.0)
        power_w = [x.power_mw / 1e3 for x in s if x.power_mw is not None]
        energy, source = None, None
        if self._e0 is not None and self._e1 is not None and self._e1 >= self._e0:
            energy, source = (self._e1 - self._e0) / 1e3, "counter"
        elif power_w:
            energy, source = _power_integral(s, duration), "power-integral"
        sm = [x.sm_mhz for x in s if x.sm_mhz is not None]
        seen: dict[str, None] = {}
        for x in s:
            for r in x.reasons or ():
                if r not in IDLE_REASONS:
                    seen.setdefault(r, None)
        try:
            gpu = self.adapter.name(self.device)
        except Exception:
            gpu = None
        return NvmlReport(
            device=self.device,
            gpu=gpu,
            duration_s=duration,
            samples=len(s),
            power_avg_w=_mean(power_w),
            power_max_w=max(power_w) if power_w else None,
            energy_j=energy,
            energy_source=source,
            calls=calls,
            energy_per_call_j=_per_call(energy, calls, _mean(power_w), seconds_per_call),
            sm_clock_mhz_min=min(sm) if sm else None,
            sm_clock_mhz_avg=_mean(sm),
            sm_clock_mhz_max=max(sm) if sm else None,
            mem_clock_mhz=_mean([x.mem_mhz for x in s if x.mem_mhz is not None]),
            temperature_max_c=_max([x.temperature_c for x in s]),
            gpu_util_avg_pct=_mean([x.gpu_util_pct for x in s if x.gpu_util_pct is not None]),
            mem_util_avg_pct=_mean([x.mem_util_pct for x in s if x.mem_util_pct is not None]),
            memory_used_max_bytes=_max([x.memory_used_bytes for x in s]),
            throttled=bool(seen),
            throttle_reasons=list(seen),
        )


def largest_gpu_memory_bytes(adapter: NvmlAdapter | None = None) -> int | None:
    """The memory of the biggest GPU NVML sees, without creating a CUDA context (the
    orchestrator asks before any worker starts); None when NVML cannot say."""
    adapter = adapter or NvmlAdapter()
    if adapter.available() is not None:
        return None
    sizes = [adapter.memory_total_bytes(i) for i in range(adapter.device_count())]
    known = [s for s in sizes if s]
    return max(known) if known else None


def sampler_for_cuda_device(
    device: int = 0, interval_s: float = 0.01, adapter: NvmlAdapter | None = None
) -> tuple[NvmlSampler | None, str | None]:
    """A sampler on the NVML device behind torch's CUDA ``device``, or (None, why not)."""
    adapter = adapter or NvmlAdapter()
    why = adapter.available()
    if why is not None:
        return None, why
    try:
        import torch

        index = adapter.index_for_uuid(str(torch.cuda.get_device_properties(device).uuid))
    except Exception:  # older torch without props.uuid: use CUDA's number
        index = None
    index = device if index is None else index
    return NvmlSampler(adapter, device=index, interval_s=interval_s), None


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _max(values: list) -> Any:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def _power_integral(samples: list[NvmlSample], duration: float) -> float:
    """Joules by the trapezoid rule over the samples, stretched to the whole window."""
    points = [(x.t, x.power_mw / 1e3) for x in samples if x.power_mw is not None]
    if len(points) == 1 or points[-1][0] <= points[0][0]:
        return points[0][1] * duration
    area = sum(
        (t1 - t0) * (p0 + p1) / 2 for (t0, p0), (t1, p1) in zip(points, points[1:], strict=False)
    )
    return area / (points[-1][0] - points[0][0]) * duration
