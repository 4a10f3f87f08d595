"""Comparing a candidate's outputs with the reference's, in trusted code.

Both sides arrive as plain tensors rebuilt from bytes (``tensorio``), so no method of the
candidate's runs here. The test is ``|out - ref| <= atol + rtol * |ref|`` element-wise in float64,
NaN must meet NaN and infinities must match exactly. Large tensors are compared in chunks so a
multi-GB output does not need several multi-GB temporaries.
"""

from __future__ import annotations

import dataclasses

import torch

from . import reasons

_CHUNK = 1 << 24


@dataclasses.dataclass
class Comparison:
    passed: bool
    code: str | None = None  # a reasons.* constant when not passed
    message: str = ""
    max_abs_err: float | None = None
    max_rel_err: float | None = None
    mismatched: int = 0
    numel: int = 0


def compare(
    out: torch.Tensor, ref: torch.Tensor, *, atol: float, rtol: float, device: str = "cpu"
) -> Comparison:
    """``device="cuda"`` does the arithmetic on the GPU (both sides are plain copies made here);
    GPU-size outputs of hundreds of millions of elements then compare in milliseconds."""
    if tuple(out.shape) != tuple(ref.shape):
        return Comparison(
            False,
            reasons.WRONG_SHAPE,
            f"output shape {tuple(out.shape)}, expected {tuple(ref.shape)}",
        )
    if out.dtype != ref.dtype:
        return Comparison(
            False, reasons.WRONG_DTYPE, f"output dtype {out.dtype}, expected {ref.dtype}"
        )
    a, b = out.reshape(-1), ref.reshape(-1)
    numel = a.numel()
    max_abs = max_rel = 0.0
    mismatched = nonfinite = 0
    for start in range(0, numel, _CHUNK):
        x = a[start : start + _CHUNK].to(device=device)
        y = b[start : start + _CHUNK].to(device=device)
        if torch.equal(x, y):  # bit-identical (no NaN): passes, error 0, no float64 temporaries
            continue
        x, y = x.to(torch.float64), y.to(torch.float64)
        finite = torch.isfinite(y)
        special_ok = torch.where(
            torch.isnan(y), torch.isnan(x), torch.where(finite, torch.isfinite(x), x == y)
        )
        diff = torch.where(finite & torch.isfinite(x), (x - y).abs(), torch.zeros_like(x))
        bad = (~special_ok) | (diff > atol + rtol * y.abs())
        mismatched += int(bad.sum())
        nonfinite += int((~special_ok).sum())
        if diff.numel():
            max_abs = max(max_abs, float(diff.max()))
            rel = diff / y.abs().clamp_min(atol)
            max_rel = max(max_rel, float(rel.max()))
    if mismatched:
        return Comparison(
            False,
            reasons.WRONG_OUTPUT,
            f"{mismatched} of {numel} elements outside atol={atol:g}, rtol={rtol:g} "
            f"(max abs error {max_abs:.3g}, max rel error {max_rel:.3g} over finite values"
            + (f"; {nonfinite} NaN/Inf where the reference differs)" if nonfinite else ")"),
            max_abs,
            max_rel,
            mismatched,
            numel,
        )
    return Comparison(True, None, "", max_abs, max_rel, 0, numel)
