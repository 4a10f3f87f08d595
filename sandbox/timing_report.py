"""From raw per-call times to the verdict's timing section (GPU only).

Baselines (eager and ``torch.compile``) are timed by the reference worker with the same routine
as the candidate, in an order drawn per evaluation. Speedups are ratios of medians with bootstrap
95% intervals; a timing below the roofline floor (what the bytes and FLOPs allow on this GPU) is
rejected, and so is one the orchestrator's own clock contradicts.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import random
import threading
import time
from pathlib import Path
from typing import Any

from . import backends, reasons, stats
from .verdict import TimingResult, Verdict

# Events understate the real cost when per-call wall time (back-to-back, measured outside the
# worker) exceeds this many event medians plus a fixed allowance for host jitter.
WALL_FACTOR, WALL_SLACK_MS = 3.0, 0.05


# Baselines measured by this process: (key) -> (time.monotonic() of the measurement, result).
# Kept in memory, never on disk: a candidate sharing our uid (the process sandbox) could
# otherwise write slow "baselines" for the candidates after it and inflate their speedups.
_baselines: dict[str, tuple[float, dict[str, Any]]] = {}
_baselines_lock = threading.Lock()


def time_baselines(
    common: dict, private: Path, cfg, timeout_s: float, *, gpu_name: str = ""
) -> dict[str, Any]:
    """Eager and ``torch.compile`` times for the problem, measured now or by this process
    within ``cfg.baseline_ttl_s`` for the same problem, size, GPU model and software.

    The reference does not change between the candidates of a campaign, and timing it (with the
    compile) was a third of a GPU-size evaluation; within the TTL its samples are reused, and
    the verdict's notes say from when.
    """
    key = _baseline_key(common, cfg, gpu_name)
    if cfg.baseline_ttl_s > 0:
        with _baselines_lock:
            kept = _baselines.get(key)
        age = time.monotonic() - kept[0] if kept else None
        if kept and age is not None and 0 <= age <= cfg.baseline_ttl_s:
            return {**kept[1], "reused_after_s": age}
    measured = _measure_baselines(common, private, cfg, timeout_s)
    if "error" not in measured and cfg.baseline_ttl_s > 0:
        with _baselines_lock:
            _baselines[key] = (time.monotonic(), measured)
    return measured


def _baseline_key(common: dict, cfg, gpu_name: str) -> str:
    import torch

    try:
        triton_version = importlib.metadata.version("triton")
    except importlib.metadata.PackageNotFoundError:
        triton_version = None
    what = {
        "problem": hashlib.sha256(Path(common["problem_path"]).read_bytes()).hexdigest(),
        "main": common["variants"]["main"],
        "dtype": common["dtype"],
        "tf32": common.get("allow_tf32"),
        "gpu": gpu_name,
        "torch": torch.__version__,
        "triton": triton_version,
        "compile": cfg.compile_baseline,
        "budget_ms": cfg.timing_budget_ms,
        "warmup_ms": cfg.warmup_ms,
    }
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()


def _measure_baselines(common: dict, private: Path, cfg, timeout_s: float) -> dict[str, Any]:
    from .launch import run_worker

    order = ["eager", "compile"] if cfg.compile_baseline else ["eager"]
    random.SystemRandom().shuffle(order)
    job = {
        **common,
        "mode": "timing",
        "order": order,
        "timing_seed": random.getrandbits(31),
        "budget_ms": cfg.timing_budget_ms,
        "warmup_ms": cfg.warmup_ms,
    }
    outcome, frames, bad = run_worker(
        "kernelloop.sandbox.reference",
        job,
        workdir=private,
        wrapped_by=backends.process,
        gpu=True,
        timeout_s=max(timeout_s, 900),
        memory_cap=cfg.memory_cap_bytes,
        # Trusted code: torch.compile's caches may persist, so the baseline compiles once per
        # problem and machine rather than once per evaluation.
        env={
            "TORCHINDUCTOR_CACHE_DIR": str(cfg.cache_dir / "inductor"),
            "TRITON_CACHE_DIR": str(cfg.cache_dir / "triton-reference"),
        },
    )
    found = {f["type"]: f for _, f in frames}
    if "baselines" not in found:
        why = found.get("error", {}).get("message") or bad or outcome.stderr[-1000:]
        return {"error": f"baseline timing failed: {why}", "order": order}
    return {**found["baselines"], "order": order}


def attach(
    verdict: Verdict,
    frames: list[tuple[float, dict]],
    baselines: dict[str, Any] | None,
    work: dict | None,
    dtype: str,
) -> None:
    by_type = {f["type"]: (stamp, f) for stamp, f in frames}
    if "timing" not in by_type:
        verdict.reject(reasons.CRASHED, "the worker ended before reporting its timing")
        return
    timing = by_type["timing"][1]
    if timing.get("patched"):
        verdict.reject(reasons.FUNCTION_PATCHED, f"replaced during timing: {timing['patched']}")
    cand = stats.summarize(timing["times_ms"])
    notes: list[str] = []
    results = (baselines or {}).get("results", {})
    if baselines and "error" in baselines:
        notes.append(baselines["error"])
    if baselines and "reused_after_s" in baselines:
        notes.append(
            f"baselines reused from {baselines['reused_after_s']:.0f} s ago "
            "(same problem, size, GPU model and software; KERNELLOOP_BASELINE_TTL)"
        )
    eager_raw, compiled_raw = results.get("eager"), results.get("compile")
    if not isinstance(eager_raw, list):
        verdict.reject(reasons.PROBLEM_ERROR, f"eager baseline unavailable: {eager_raw}")
        return
    if isinstance(compiled_raw, str):
        notes.append(compiled_raw)
    compiled = stats.summarize(compiled_raw) if isinstance(compiled_raw, list) else None
    result = TimingResult(
        gpu=verdict.device,
        candidate=cand,
        eager=stats.summarize(eager_raw),
        compiled=compiled,
        speedup_eager=stats.bootstrap_ratio(eager_raw, timing["times_ms"]),
        speedup_compile=stats.bootstrap_ratio(compiled_raw, timing["times_ms"])
        if compiled
        else None,
        order=list((baselines or {}).get("order", [])),
        notes=notes,
        nvml=timing["nvml"] if isinstance(timing.get("nvml"), dict) else None,
        kernels=[k for k in timing.get("kernels") or [] if isinstance(k, dict)][:64],
    )
    if result.nvml and result.nvml.get("throttled"):
        seen = ", ".join(map(str, result.nvml.get("throttle_reasons") or ["unknown"]))
        notes.append(f"timing ran throttled: {seen}")
    elif timing.get("nvml_unavailable"):
        notes.append(f"no NVML readings: {timing['nvml_unavailable']}")
    if "wall_begin" in by_type and "wall_end" in by_type:
        calls = by_type["wall_end"][1]["calls"]
        wall_ms = (by_type["wall_end"][0] - by_type["wall_begin"][0]) * 1e3 / max(calls, 1)
        result.wall_ms_per_call = wall_ms
        if wall_ms > WALL_FACTOR * cand.median + WALL_SLACK_MS:
            verdict.reject(
                reasons.WALL_CLOCK_MISMATCH,
                f"events say {cand.median:.4f} ms per call, the outside clock {wall_ms:.4f} ms",
            )
    else:
        verdict.reject(reasons.CHANNEL_TAMPERED, "wall-clock frames missing")
    _roofline(verdict, result, work, dtype)
    verdict.timing = result


def _roofline(verdict: Verdict, result: TimingResult, work: dict | None, dtype: str) -> None:
    if not work or "error" in work:
        result.notes.append(f"no roofline estimate: {(work or {}).get('error', 'not computed')}")
        return
    import torch

    from ..feedback import gpu_specs, roofline

    spec = gpu_specs.current()
    w = roofline.Work(flops=work["flops"], bytes=work["bytes"], flops_source=work["flops_source"])
    tdtype = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[dtype]
    floor_s = roofline.floor_seconds(w, spec, tdtype)
    measured_s = result.candidate.median / 1e3
    result.roofline_floor_ms = floor_s * 1e3
    bps, fps = roofline.achieved(w, measured_s)
    result.achieved_gbps, result.achieved_tflops = bps / 1e9, fps / 1e12
    result.fraction_of_peak = roofline.fraction_of_roofline(w, spec, tdtype, measured_s)
    if measured_s < floor_s:
        verdict.reject(
            reasons.BELOW_ROOFLINE_FLOOR,
            f"median {result.candidate.median:.4f} ms is "
            f"below the {floor_s * 1e3:.4f} ms that {w.bytes / 1e6:.1f} MB and "
            f"{w.flops / 1e9:.2f} GFLOP allow on {spec.name}",
        )
