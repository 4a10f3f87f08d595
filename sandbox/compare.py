"""Comparing a candidate's outputs with the reference's, in trusted code.

Both sides arrive as plain tensors rebuilt from bytes (``tensorio``), so no method of the
candidate's runs here. The test is ``|out - ref| <= atol + rtol * |ref|`` element-wise in float64,
NaN must meet NaN and infinities must match exactly. Large tensors are compared in chunks so a
multi-GB output does not need several multi-GB temporaries.

A half-precision problem may also bring ``exact``: the same reference computed in float64 (kept
in float32) from the same rounded inputs and weights (``sandbox/exact.py``). Where a chain of
ops cancels (a residual add of two nearly opposite values), the reference's own rounding of its
intermediates is the error, and an honest kernel that rounds at other points (a fused one keeps
float32 intermediates) lands elsewhere within that noise. So an element outside the reference's
tolerance still passes if it is within the tolerance of the exact value, or no farther from it
than twice the reference's own worst error over the output (the criterion FlashAttention's
tests use). That worst error counts only where the reference is itself outside the exact value's
tolerance (cancellation noise): the rounding of a large element is within its rtol, and an output
whose largest elements are thousands (massive activations, a wide dynamic range) would otherwise
let its small elements be anything within a few units (a skipped row passed as zeros). The second
rule may let through at most ``NOISE_SHARE`` of an output's elements: a shortcut (lower precision,
skipped work) errs everywhere, rounding noise on a few cancelling elements. Errors are still
reported against the reference; ``exact_only`` counts the elements the exact reference let
through.
"""

from __future__ import annotations

import dataclasses

import torch

from . import reasons

_CHUNK = 1 << 24
NOISE_FACTOR = 2.0  # times the reference's worst error against the exact value
NOISE_SHARE = 0.01  # of an output's elements that may pass on the noise rule alone


@dataclasses.dataclass
class Comparison:
    passed: bool
    code: str | None = None  # a reasons.* constant when not passed
    message: str = ""
    max_abs_err: float | None = None
    max_rel_err: float | None = None
    mismatched: int = 0
    numel: int = 0
    exact_only: int = 0  # elements outside the reference's tolerance, inside the exact one's


def compare(
    out: torch.Tensor,
    ref: torch.Tensor,
    *,
    atol: float,
    rtol: float,
    device: str = "cpu",
    exact: torch.Tensor | None = None,
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
    if exact is not None and tuple(exact.shape) != tuple(ref.shape):
        exact = None  # the reference worker checks this; a mismatch here is never a pass
    z_all = exact.reshape(-1) if exact is not None else None
    floor: float | None = None  # computed once an element needs it
    numel = a.numel()
    max_abs = max_rel = 0.0
    mismatched = nonfinite = exact_only = noise_only = 0
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
        if z_all is not None and bool(bad.any()):
            z = z_all[start : start + _CHUNK].to(device=device, dtype=torch.float64)
            if floor is None:
                floor = NOISE_FACTOR * _worst_noise(b, z_all, atol, rtol, device)
            off = torch.where(torch.isfinite(z) & torch.isfinite(x), (x - z).abs(), torch.inf)
            within = bad & special_ok & (off <= atol + rtol * z.abs())
            noise = bad & special_ok & ~within & (off <= floor)
            exact_only += int(within.sum()) + int(noise.sum())
            noise_only += int(noise.sum())
            bad &= ~(within | noise)
        mismatched += int(bad.sum())
        nonfinite += int((~special_ok).sum())
        if diff.numel():
            max_abs = max(max_abs, float(diff.max()))
            rel = diff / y.abs().clamp_min(atol)
            max_rel = max(max_rel, float(rel.max()))
    if noise_only > NOISE_SHARE * numel:  # errs broadly: not rounding noise
        mismatched += noise_only
        exact_only -= noise_only
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
            exact_only,
        )
    return Comparison(True, None, "", max_abs, max_rel, 0, numel, exact_only)


def _worst_noise(
    ref: torch.Tensor, exact: torch.Tensor, atol: float, rtol: float, device: str
) -> float:
    """The reference's largest distance from the exact value over the elements where that distance
    is outside the exact value's tolerance (finite in both); 0 where the reference has no such
    noise. An error within the tolerance is ordinary rounding, proportional to the element: it
    says nothing of how far a cancelling element may drift, and taken as the floor it would
    scale every small element's allowance with the output's largest value."""
    worst = 0.0
    for start in range(0, ref.numel(), _CHUNK):
        y = ref[start : start + _CHUNK].to(device=device, dtype=torch.float64)
        z = exact[start : start + _CHUNK].to(device=device, dtype=torch.float64)
        err = (y - z).abs()
        noisy = torch.isfinite(y) & torch.isfinite(z) & (err > atol + rtol * z.abs())
        if bool(noisy.any()):
            worst = max(worst, float(err[noisy].max()))
    return worst
