"""Structured measurements of one candidate, for the builtin judge (the LLM Judge reads text).

From the verdict's timing: bound class and fraction of peak DRAM bandwidth (the roofline is
re-derived from the achieved rates the evaluator recorded). From Nsight Compute counters, when
the profile step collected them: what limits occupancy. From compiler resources, when known:
spills.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...sandbox.verdict import Verdict
from . import search


def measurements(
    verdict: Verdict,
    ncu: Mapping[str, Any] | None = None,
    static: list[Any] | None = None,
    dtype: str = "float32",
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    t = verdict.timing
    if t is not None and t.candidate and t.candidate.median:
        out.update(_roofline(t, dtype))
    if ncu:
        out["occupancy_limiter"] = search.limiter(ncu)
    spills = [getattr(s, "spills", None) for s in static or []]
    if t is not None:
        spills += [bool(k["spills"]) for k in t.kernels if isinstance(k.get("spills"), int)]
    if any(s is not None for s in spills):
        out["spills"] = any(bool(s) for s in spills)
    return out


def _roofline(t, dtype: str) -> dict[str, Any]:
    from ...feedback import gpu_specs, roofline

    spec = gpu_specs.lookup(t.gpu)
    if spec is None or t.achieved_gbps is None:
        return {}
    seconds = t.candidate.median / 1e3
    work = roofline.Work(
        flops=(t.achieved_tflops or 0.0) * 1e12 * seconds,
        bytes=t.achieved_gbps * 1e9 * seconds,
        flops_source="counted",
    )
    import torch

    out = {"bandwidth_fraction": t.achieved_gbps / spec.mem_bandwidth_gbs}
    try:
        out["bound"] = roofline.classify(work, spec, getattr(torch, dtype), seconds)
    except ValueError:
        pass
    return out
