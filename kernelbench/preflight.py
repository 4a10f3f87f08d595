"""Can this problem be evaluated at this size? Asked before anything runs.

Two questions, both answered from one meta-device probe (``probe.py``, milliseconds):

- Is the reference deterministic? A forward that draws random numbers (dropout in training
  mode, the mode KernelBench runs its models in) matches no kernel: :class:`NotEvaluable`,
  unless the problem declares ``EVAL_MODE = True``.
- Will the size fit? The memory and time an evaluation needs, estimated before anything runs.

A KernelBench ReLU at its GPU size holds two 6.4 GB tensors; on a 24 GB CPU machine the
reference worker alone would hit its memory cap after minutes of silence. :func:`check`
refuses, naming the estimate and the way out, a size whose worker would not fit its memory cap
(or any GPU here, as NVML reports it: no CUDA context in the orchestrator), or whose reference
alone would outlast the worker timeout.
"""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING, Any

from .. import settings as settings_mod
from . import probe
from .errors import ProblemError

if TYPE_CHECKING:
    from .problem import Problem

CPU_FLOPS = 5e9  # what torch sustains on a couple of CPU cores, fp32 (order of magnitude)
CPU_BYTES_PER_S = 4e9
WORKER_OVERHEAD = 1 << 30  # torch, Triton and the interpreter in a worker's address space


class SizeError(ProblemError):
    """The size asked for does not fit this machine."""


class NotEvaluable(ProblemError):
    """No kernel can be checked against this reference (it is random)."""


@dataclasses.dataclass
class Estimate:
    worker_bytes: int  # one worker: state, intermediates and outputs of one forward
    total_bytes: int  # reference and candidate workers, plus the comparison's two copies
    reference_s: float  # one reference forward on this device (CPU: a rough estimate)
    probe: probe.Probe

    def describe(self) -> str:
        return (
            f"about {_gb(self.worker_bytes)} per worker ({_gb(self.total_bytes)} in all), "
            f"largest tensor {self.probe.largest:,} elements, "
            f"{self.probe.flops / 1e9:.2f} GFLOP per forward"
        )


def _gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def available_ram() -> int:
    """MemAvailable, or the cgroup's remaining allowance when that is lower."""
    found = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    found = int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            cap = f.read().strip()
        with open("/sys/fs/cgroup/memory.current") as f:
            used = int(f.read().strip())
        if cap != "max":
            found = min(found or 1 << 62, int(cap) - used)
    except (OSError, ValueError):
        pass
    return found if found is not None else os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def estimate(problem: Problem, overrides: dict[str, Any]) -> Estimate:
    p = probe.run(problem, overrides)
    out_bytes = p.peak_bytes - p.state_bytes
    worker = p.peak_bytes + WORKER_OVERHEAD
    total = 2 * worker + 2 * out_bytes
    seconds = max(p.flops / CPU_FLOPS, (p.peak_bytes * 2) / CPU_BYTES_PER_S)
    return Estimate(worker, total, seconds, p)


def check(problem: Problem, overrides: dict[str, Any], device: str, size: str) -> None:
    """Raise :class:`NotEvaluable` for a random reference and :class:`SizeError` when the
    evaluation cannot fit; a size the meta device cannot run is left to the reference worker
    to report."""
    try:
        est = estimate(problem, overrides)
    except probe.ProbeError:
        return
    if est.probe.random:
        ops = ", ".join(sorted(set(est.probe.random)))
        raise NotEvaluable(
            f"{problem.id} is not evaluable: its reference draws random numbers in forward "
            f"({ops}; dropout in training mode, the mode PyTorch builds a model in), so no "
            "kernel can match it. If it is meant for inference, declare EVAL_MODE = True in "
            "the problem file (the reference then runs in eval mode, where dropout is identity)"
        )
    cfg = settings_mod.get()
    way_out = (
        "evaluate a smaller size: --size auto (derived for a CPU), a declared size, "
        "or --set NAME=VALUE"
    )
    if device == "cuda":
        from ..feedback import nvml

        gpu = nvml.largest_gpu_memory_bytes()
        if gpu is not None and est.worker_bytes - WORKER_OVERHEAD > gpu:
            raise SizeError(
                f"{problem.id} at size {size!r} needs {est.describe()}; the largest GPU here "
                f"has {_gb(gpu)}. {way_out}"
            )
        return
    room = available_ram()
    if est.worker_bytes > cfg.memory_cap_bytes or est.total_bytes > room:
        raise SizeError(
            f"{problem.id} at size {size!r} needs {est.describe()}; this machine allows "
            f"{_gb(cfg.memory_cap_bytes)} per worker (KERNELLOOP_MEMORY_CAP) and has "
            f"{_gb(room)} available. {way_out}"
        )
    if est.reference_s > cfg.timeout_s:
        raise SizeError(
            f"{problem.id} at size {size!r}: one reference forward alone takes about "
            f"{est.reference_s:.0f} s on this CPU ({est.describe()}), over the worker timeout of "
            f"{cfg.timeout_s:.0f} s (KERNELLOOP_TIMEOUT). {way_out}"
        )
