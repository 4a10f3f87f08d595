"""How much work a problem is, the fastest the hardware could do it, and where a timing sits.

``estimate_work`` counts FLOPs with torch's ``FlopCounterMode`` (matmuls, convolutions, attention;
elementwise ops count as zero) and the compulsory DRAM traffic: every input, parameter and buffer
read once, every output written once. It runs happily on the ``meta`` device, so a CPU machine can
size the GPU problem without computing anything. ``floor_seconds`` is the roofline's lower bound on
time; the evaluator rejects timings below it (a kernel that "beats" physics skipped work or cached
results), and the Judge reads ``classify`` / ``fraction_of_roofline`` to pick the next step.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import torch
from torch.utils.flop_counter import FlopCounterMode

from .gpu_specs import GpuSpec, peak_bandwidth, peak_flops

# classify(): below this floor a kernel is dominated by launch and latency, not by a roof
# (an H100 kernel launch alone costs ~2-4 us).
LATENCY_FLOOR_S = 5e-6
# classify(): a timing this many times above the floor is explained by neither roof: stalls,
# poor occupancy, serialisation or launch overhead; "latency-bound" names that bucket.
LATENCY_RATIO = 20.0

Bound = Literal["memory-bound", "compute-bound", "latency-bound"]


@dataclass(frozen=True)
class Work:
    flops: float
    bytes: float
    flops_source: Literal["declared", "counted", "none"]  # "none": no FLOP-counted op ran

    @property
    def intensity(self) -> float:
        """Arithmetic intensity, FLOP per byte of compulsory traffic."""
        return self.flops / self.bytes if self.bytes else float("inf")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Work:
        return cls(float(data["flops"]), float(data["bytes"]), data["flops_source"])


def estimate_work(
    model, inputs: list, *, declared_flops: float | None = None, declared_bytes: float | None = None
) -> Work:
    """FLOPs and compulsory bytes of ``model(*inputs)``; declared figures override counted ones.

    Put model and inputs on ``meta`` to size a GPU problem on a CPU machine. The model runs once
    unless both figures are declared.
    """
    if declared_flops is not None and declared_bytes is not None:
        return Work(float(declared_flops), float(declared_bytes), "declared")
    counter = FlopCounterMode(display=False)
    try:
        with torch.no_grad(), counter:
            output = model(*inputs)
    except Exception as exc:  # e.g. an op with no meta kernel
        raise RuntimeError(
            f"estimate_work could not run {type(model).__name__} ({type(exc).__name__}: {exc}); "
            "run it on a real device instead of meta, or pass declared_flops and declared_bytes"
        ) from exc
    counted = float(counter.get_total_flops())
    if declared_flops is not None:
        flops, source = float(declared_flops), "declared"
    else:
        flops, source = counted, ("counted" if counted else "none")
    if declared_bytes is not None:
        nbytes = float(declared_bytes)
    else:
        state = [*model.parameters(), *model.buffers()] if hasattr(model, "parameters") else []
        nbytes = float(tensor_bytes([inputs, state]) + tensor_bytes([output]))
    return Work(flops, nbytes, source)  # type: ignore[arg-type]


def tensor_bytes(tree) -> int:
    """Bytes of the distinct tensors in nested lists/tuples/dicts (a tensor passed twice counts
    once: it is read once by a kernel that knows what it is doing)."""
    seen: dict[int, torch.Tensor] = {}
    stack = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, torch.Tensor):
            seen[id(item)] = item
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
    return sum(t.numel() * t.element_size() for t in seen.values())


def floor_seconds(work: Work, spec: GpuSpec, dtype) -> float:
    """The roofline lower bound: max(bytes / peak bandwidth, FLOPs / peak tensor-core FLOP/s).

    Assumes a cold L2 (the timing routine flushes it before each run) and the datasheet peaks,
    which err high; any honest timing is at or above it.
    """
    memory_s = work.bytes / peak_bandwidth(spec)
    compute_s = work.flops / peak_flops(spec, dtype, tensor_cores=True)
    return max(memory_s, compute_s)


def attainable_seconds(work: Work, spec: GpuSpec, dtype) -> float:
    """The time a kernel running at the roofline would take: the target the Judge aims at.

    Same number as ``floor_seconds``; the separate name says which question the caller asks.
    """
    return floor_seconds(work, spec, dtype)


def classify(work: Work, spec: GpuSpec, dtype, measured_s: float) -> Bound:
    """Which limit explains ``measured_s``.

    Rule: "latency-bound" when the floor is under ``LATENCY_FLOOR_S`` (too little work for any
    roof to matter) or the measurement is over ``LATENCY_RATIO`` times the floor (neither roof
    explains the time); otherwise the roof with the larger time at peak: "memory-bound" when
    bytes / bandwidth >= FLOPs / peak FLOP/s (intensity below the ridge point), else
    "compute-bound".
    """
    _check_positive(measured_s)
    floor = floor_seconds(work, spec, dtype)
    if floor < LATENCY_FLOOR_S or measured_s > LATENCY_RATIO * floor:
        return "latency-bound"
    memory_s = work.bytes / peak_bandwidth(spec)
    compute_s = work.flops / peak_flops(spec, dtype, tensor_cores=True)
    return "memory-bound" if memory_s >= compute_s else "compute-bound"


def fraction_of_roofline(work: Work, spec: GpuSpec, dtype, measured_s: float) -> float:
    """floor / measured: 1.0 is at the roofline; above 1.0 is physically impossible."""
    _check_positive(measured_s)
    return floor_seconds(work, spec, dtype) / measured_s


def achieved(work: Work, measured_s: float) -> tuple[float, float]:
    """(bytes/s, FLOP/s) the measured time implies for the compulsory work."""
    _check_positive(measured_s)
    return work.bytes / measured_s, work.flops / measured_s


def _check_positive(measured_s: float) -> None:
    if not measured_s > 0:
        raise ValueError(f"measured time must be a positive number of seconds, got {measured_s!r}")
