"""A half-precision reference's float64 twin: the same function of the same rounded numbers.

``compare.py`` says how it is used: where a chain of half-precision ops cancels, the reference's
own rounding is the error, and the twin shows where the true value lies. The twin is the
reference module with its (already rounded) weights widened to float64, run on the (already
rounded) inputs widened the same way, so it differs from the reference only by rounding.
"""

from __future__ import annotations

import copy

import torch

HALF = ("float16", "bfloat16")
# A twin that disagrees with the reference beyond the tolerance on more than this share of an
# output's elements computes something else (a forward that branches on its dtype, a cast it
# makes itself), not the same thing more exactly: it is not used.
AGREEMENT = 0.01
# The twin's outputs are kept in float32: a relative precision of 6e-8 against half types'
# tolerance of 1e-2 loses nothing, and they take twice a half output's bytes instead of four
# times. A trial whose twin would take more than this is judged by the reference alone.
MAX_BYTES = 2 << 30


def widen_model(model: torch.nn.Module) -> torch.nn.Module:
    """A float64 copy; the original is untouched (its forward still runs the reference)."""
    return copy.deepcopy(model).to(torch.float64)


def widen(values: list) -> list:
    return [
        v.to(torch.float64) if isinstance(v, torch.Tensor) and v.is_floating_point() else v
        for v in values
    ]


def disagreement(outputs: list, wide: list, tol: dict) -> str | None:
    """Why ``wide`` cannot serve as ``outputs``' twin, or None when it can."""
    if len(wide) != len(outputs):
        return f"{len(wide)} outputs in float64, {len(outputs)} in the reference"
    for w, o in zip(wide, outputs, strict=True):
        fits = (
            isinstance(w, torch.Tensor)
            and isinstance(o, torch.Tensor)
            and o.is_floating_point()
            and w.dtype == torch.float64
            and w.shape == o.shape
        )
        if not fits:
            return "an output is not a floating tensor of one shape in both"
        if not o.numel():
            continue
        y, z = o.to(device=w.device, dtype=torch.float64), w
        apart = (
            torch.isfinite(y)
            & torch.isfinite(z)
            & ((y - z).abs() > tol["atol"] + tol["rtol"] * z.abs())
        )
        if int(apart.sum()) > AGREEMENT * o.numel():
            return (
                f"it disagrees with the {o.dtype} reference on {int(apart.sum())} of "
                f"{o.numel()} elements, so it computes something else"
            )
    return None


def stored(wide: list, notes: set[str]) -> list | None:
    """The twin's outputs as the orchestrator keeps them (float32), or None past MAX_BYTES."""
    size = sum(w.numel() * 4 for w in wide)
    if size > MAX_BYTES:
        notes.add(f"no float64 reference: its outputs would take {size >> 20} MiB")
        return None
    return [w.float() for w in wide]
