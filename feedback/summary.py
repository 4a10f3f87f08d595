"""The few facts the Judge needs to name the next fix, in a bounded number of characters.

:func:`judge_summary` reads a :class:`~kernelloop.sandbox.verdict.Verdict` and whatever else the
profile step found (static resources, Nsight Compute metrics, the previous best verdict) and writes
short lines: what limits the kernel (roofline class on the verdict's GPU), the numbers behind it
with units and the fraction of peak, the spread of the timing, NVML clocks and throttling,
registers and spills, the top ncu metrics and stall reasons, and the change against the previous
best. Lines carry priorities; when the text would exceed ``budget_chars`` the least important
lines go first, so the class and the timing survive any budget.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from . import gpu_specs, roofline, untrusted
from .static_resources import StaticResources

# Priorities: 0 is kept longest. Lines print in the order they were added.
_HEAD, _KEY, _DETAIL, _EXTRA = 0, 1, 2, 3

# (ncu metric, label): the ones that explain a bottleneck, most telling first.
NCU_HIGHLIGHTS: tuple[tuple[str, str], ...] = (
    ("dram__throughput.avg.pct_of_peak_sustained_elapsed", "DRAM throughput"),
    ("sm__throughput.avg.pct_of_peak_sustained_elapsed", "SM throughput"),
    ("gpu__compute_memory_throughput.avg.pct_of_peak_sustained_elapsed", "memory throughput"),
    ("sm__warps_active.avg.pct_of_peak_sustained_active", "achieved occupancy"),
    ("sm__maximum_warps_per_active_cycle_pct", "theoretical occupancy"),
    ("sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active", "tensor pipe"),
    ("sm__pipe_fma_cycles_active.avg.pct_of_peak_sustained_active", "FMA pipe"),
    ("lts__t_sector_hit_rate.pct", "L2 hit rate"),
    ("l1tex__t_sector_hit_rate.pct", "L1 hit rate"),
    ("gpu__time_duration.sum", "kernel duration"),
)
_LIMITERS = ("registers", "shared_mem", "warps", "blocks")  # launch__occupancy_limit_<x>
_STALL = re.compile(r"stalled_([a-z0-9_]+?)(?:_per_warp_active|_per_issue_active)?(?:\.|$)")
_DTYPES = ("float32", "float16", "bfloat16", "float8_e4m3fn", "int8")


def judge_summary(
    verdict,
    *,
    static: StaticResources | Sequence[StaticResources] | None = None,
    ncu: Mapping[str, tuple[Any, str]] | None = None,
    previous=None,
    budget_chars: int = 1200,
    work: roofline.Work | None = None,
    dtype=None,
) -> str:
    """Text for the Judge, at most ``budget_chars`` characters.

    ``ncu``: metric name -> (value, unit), as the Nsight Compute parser gives it. ``work`` and
    ``dtype`` (the problem's FLOPs/bytes and input dtype) sharpen the roofline figures; without
    them both are recovered from the verdict's achieved rates and roofline floor.
    """
    lines: list[tuple[int, str]] = []
    add = lambda prio, text: lines.append((prio, text))  # noqa: E731
    state = "accepted" if verdict.accepted else "rejected"
    add(
        _HEAD,
        f"{verdict.problem_id} [{verdict.size}] {verdict.backend} on {verdict.device}: {state}",
    )
    for r in verdict.reasons[:2]:  # a message may quote the candidate's output: fenced
        add(_HEAD, f"reason {r.code}: {' '.join(untrusted.fence(r.message, 160).split())}")
    t = verdict.timing
    if t is None:
        why = verdict.timing_note or "not measured"
        add(_HEAD, f"timing unavailable ({why}): no speed figures; nothing here was timed on a GPU")
        if verdict.correctness is not None:
            c = verdict.correctness
            ok = sum(tr.passed for tr in c.trials)
            add(
                _KEY,
                f"correctness: {'passed' if c.passed else 'failed'} ({ok}/{len(c.trials)} trials)",
            )
    else:
        _timing_lines(t, verdict.device, work, dtype, add)
        _nvml_line(t.nvml, add)
    for res in ([static] if isinstance(static, StaticResources) else list(static or []))[:3]:
        _static_line(res, verdict, add)
    if ncu:
        _ncu_lines(ncu, add)
    if previous is not None:
        _previous_line(verdict, previous, add)
    if t is not None:
        for note in t.notes[:2]:
            add(_EXTRA, f"note: {_clip(note, 160)}")
    return _fit(lines, budget_chars)


# --- timing and roofline --------------------------------------------------------------------------


def _timing_lines(t, device: str, work, dtype, add) -> None:
    c = t.candidate
    text = f"time: median {_ms(c.median)} (IQR {_ms(c.iqr)}, n={c.n})"
    text += f"; {t.speedup_eager.point:.2f}x vs eager (95% CI {t.speedup_eager.low:.2f}-"
    text += f"{t.speedup_eager.high:.2f})"
    if t.speedup_compile is not None:
        text += f", {t.speedup_compile.point:.2f}x vs torch.compile"
    add(_HEAD, text)
    spec = gpu_specs.lookup(t.gpu or "") or gpu_specs.lookup(device or "")
    measured_s = c.median / 1e3
    if work is None and t.achieved_gbps is not None and t.achieved_tflops is not None:
        work = roofline.Work(
            flops=t.achieved_tflops * 1e12 * measured_s,
            bytes=t.achieved_gbps * 1e9 * measured_s,
            flops_source="counted",
        )
    if work is None or not measured_s > 0:
        note = next((n for n in t.notes if n.startswith("no roofline")), "no FLOP/byte estimate")
        add(_HEAD, f"bottleneck: unknown ({_clip(note, 120)})")
        return
    gbps, tflops = work.bytes / measured_s / 1e9, work.flops / measured_s / 1e12
    if spec is None:
        rates = _gbs(gbps) + (f", {tflops:.3g} TFLOP/s" if work.flops else "")
        add(_HEAD, f"bottleneck: unknown GPU '{t.gpu}' (no datasheet peaks); {rates}")
        return
    if dtype is not None:
        dtype = label = str(dtype).removeprefix("torch.")
    else:
        dtype, label = _infer_dtype(work, spec, t)
    bound = roofline.classify(work, spec, dtype, measured_s)
    floor_ms = roofline.floor_seconds(work, spec, dtype) * 1e3
    frac = floor_ms / c.median
    head = f"bottleneck: {bound} on {spec.name}: at {_pct(frac)} of the roofline"
    add(_HEAD, f"{head} (floor {_ms(floor_ms)}, intensity {work.intensity:.3g} FLOP/B)")
    peak_bw = spec.mem_bandwidth_gbs
    roofs = [(f"memory: {_gbs(gbps)} = {_pct(gbps / peak_bw)} of {_gbs(peak_bw)} DRAM peak")]
    if work.flops > 0:
        text = f"compute: {tflops:.3g} TFLOP/s"
        if label:
            peak = gpu_specs.peak_flops(spec, dtype) / 1e12
            text += f" = {_pct(tflops / peak)} of {peak:.4g} TFLOP/s {label} tensor-core peak"
        roofs.insert(0 if bound == "compute-bound" else 1, text)
    add(_KEY, roofs[0])  # the binding roof (or memory, for latency-bound kernels) first
    for text in roofs[1:]:
        add(_DETAIL, text)
    if bound == "latency-bound":
        add(
            _DETAIL,
            "latency-bound: the floor is under 5 us or the time is over 20x the floor: launch "
            "overhead, stalls, serialisation or low occupancy, not a roof",
        )


def _infer_dtype(work: roofline.Work, spec, t) -> tuple[str, str | None]:
    """(dtype, label; None when uncertain): a dtype whose compute peak reproduces the verdict's
    roofline floor (verdicts do not store it). When the memory roof set the floor, several fit,
    each giving the same class, and no compute peak can be quoted; dtypes with equal peaks (fp16
    and bf16 on most GPUs) count as one and share the label."""
    fits = [
        d
        for d in _DTYPES
        if t.roofline_floor_ms is not None
        and math.isclose(
            roofline.floor_seconds(work, spec, d) * 1e3, t.roofline_floor_ms, rel_tol=1e-3
        )
    ]
    if not fits:
        return "float32", None
    same_peak = len({gpu_specs.peak_flops(spec, d) for d in fits}) == 1
    return fits[0], "/".join(fits) if same_peak else None


def _nvml_line(nvml: Mapping[str, Any] | None, add) -> None:
    if not isinstance(nvml, Mapping) or not nvml.get("samples"):
        return
    parts = []
    lo, avg, hi = (_number(nvml.get(f"sm_clock_mhz_{k}")) for k in ("min", "avg", "max"))
    if None not in (lo, avg, hi):
        parts.append(f"SM clock {lo:.0f}-{hi:.0f} MHz (avg {avg:.0f})")
    power, peak = _number(nvml.get("power_avg_w")), _number(nvml.get("power_max_w"))
    if power is not None and peak is not None:
        parts.append(f"{power:.0f} W avg, {peak:.0f} W max")
    if (joules := _number(nvml.get("energy_per_call_j"))) is not None:
        per_call = f"{joules:.3g} J" if joules >= 1 else f"{joules * 1e3:.3g} mJ"
        parts.append(f"{per_call} per call")
    if (temp := _number(nvml.get("temperature_max_c"))) is not None:
        parts.append(f"{temp:.0f} C max")
    reasons = ", ".join(map(str, nvml.get("throttle_reasons") or []))
    parts.append(f"THROTTLED ({reasons})" if nvml.get("throttled") else "not throttled")
    add(_KEY if nvml.get("throttled") else _DETAIL, "GPU during timing: " + "; ".join(parts))


# --- static resources, ncu, previous best ---------------------------------------------------------


def _static_line(res: StaticResources, verdict, add) -> None:
    if res.registers_per_thread is None and res.local_bytes is None:
        why = res.notes[0] if res.notes else "not measured"
        add(_DETAIL, f"resources of {res.kernel}: unknown ({_clip(why, 140)})")
        return
    parts = []
    if res.registers_per_thread is not None:
        regs = res.registers_per_thread
        spec = gpu_specs.lookup(verdict.device or "")
        per_sm = spec.regs_per_sm if spec else 65536
        warps = per_sm // (math.ceil(regs / 8) * 8 * 32)  # registers go to warps in 256s
        parts.append(f"{regs} registers/thread (<= {warps} warps/SM by registers)")
    if res.spills:
        parts.append(f"SPILLS {res.spill_stores_bytes} B stores/{res.spill_loads_bytes} B loads")
    elif res.spills is False:
        parts.append("no spills")
    if res.local_bytes:
        parts.append(f"{res.local_bytes} B local/thread")
    if res.shared_bytes is not None:
        parts.append(f"{res.shared_bytes} B shared/block")
    where = ", ".join(x for x in (res.source, res.arch) if x)  # launched kernels name no arch
    add(_KEY, f"resources of {res.kernel} ({where}): " + ", ".join(parts))


def _ncu_lines(ncu: Mapping[str, tuple[Any, str]], add) -> None:
    shown = []
    for metric, label in NCU_HIGHLIGHTS:
        if metric in ncu:
            value, unit = _pair(ncu[metric])
            shown.append(f"{label} {_value(value, unit)}")
    if shown:
        add(_KEY, "ncu: " + "; ".join(shown[:5]))
        if len(shown) > 5:
            add(_EXTRA, "ncu: " + "; ".join(shown[5:]))
    limits = {
        k: _number(_pair(ncu[f"launch__occupancy_limit_{k}"])[0])
        for k in _LIMITERS
        if f"launch__occupancy_limit_{k}" in ncu
    }
    limits = {k: v for k, v in limits.items() if v is not None}
    if limits:
        worst = min(limits.values())
        by = ", ".join(k for k, v in limits.items() if v == worst)
        add(_DETAIL, f"occupancy limited by {by}: {worst:.0f} blocks/SM")
    stalls: dict[str, float] = {}
    for metric, raw in ncu.items():
        m = _STALL.search(metric)
        value, _ = _pair(raw)
        if m and m.group(1) not in ("selected", "not_selected") and _number(value) is not None:
            stalls[m.group(1)] = max(stalls.get(m.group(1), 0.0), _number(value))
    if stalls:
        top = sorted(stalls.items(), key=lambda kv: -kv[1])[:3]
        text = ", ".join(f"{k} {v:.3g}" for k, v in top)
        add(_DETAIL, f"top warp stalls (cycles per issued instruction): {text}")


def _previous_line(verdict, previous, add) -> None:
    t, p = verdict.timing, previous.timing
    if t is None or p is None:
        add(
            _DETAIL,
            "vs previous best: no timing on " + ("this run" if t is None else "the previous best"),
        )
        return
    cur, old = t.candidate.median, p.candidate.median
    ratio = old / cur if cur > 0 else float("inf")
    change = (cur - old) / old if old > 0 else 0.0
    word = "faster" if ratio > 1 else "slower"
    noise = abs(cur - old) <= max(t.candidate.iqr, p.candidate.iqr)
    text = f"vs previous best: {_ms(old)} -> {_ms(cur)}, {ratio:.2f}x {word} ({change:+.1%} time"
    text += ", within the spread)" if noise else ")"
    text += f"; vs eager {p.speedup_eager.point:.2f}x -> {t.speedup_eager.point:.2f}x"
    if p.gpu != t.gpu:
        text += f" (previous on {p.gpu})"
    add(_KEY, text)


# --- formatting and the budget --------------------------------------------------------------------


def _fit(lines: list[tuple[int, str]], budget: int) -> str:
    """Drop the least important lines (last first among equals) until the text fits."""
    budget = max(budget, 0)
    keep = list(range(len(lines)))
    text = lambda: "\n".join(lines[i][1] for i in keep)  # noqa: E731
    while len(text()) > budget and len(keep) > 1:
        worst = max(keep, key=lambda i: (lines[i][0], i))
        keep.remove(worst)
    out = text()
    return out if len(out) <= budget else out[: max(budget - 3, 0)] + "..."[:budget]


def _pair(raw) -> tuple[Any, str]:
    if isinstance(raw, tuple | list) and len(raw) == 2:
        return raw[0], str(raw[1] or "")
    return raw, ""


def _number(value) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        x = float(str(value).replace(",", ""))
    except ValueError:
        return None
    return x if math.isfinite(x) else None


def _value(value, unit: str) -> str:
    x = _number(value)
    if x is None:
        return f"{value} {unit}".strip()
    return f"{x:.3g}%" if unit == "%" else f"{x:.4g} {unit}".strip()


def _ms(x: float) -> str:
    return f"{x * 1e3:.3g} us" if x < 0.1 else f"{x:.4g} ms"


def _pct(fraction: float) -> str:
    """64%, 7.4%, 0.012%: two significant digits below 10%, none above."""
    pct = fraction * 100
    return f"{pct:.0f}%" if pct >= 10 else f"{pct:.2g}%"


def _gbs(gbps: float) -> str:
    return f"{gbps / 1e3:.3g} TB/s" if gbps >= 1000 else f"{gbps:.3g} GB/s"


def _clip(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
