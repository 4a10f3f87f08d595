"""Padding (``F.pad``, ``nn.ZeroPad2d``, ``nn.ReflectionPad2d``, ``nn.ReplicationPad2d``) of up
to the last three dims, as one Triton kernel.

The input is read through its strides as ``[A, B, D, H, W]`` (the host puts unit dims before a
lower rank); ``PD, PH, PW`` are the pads before each of the last three dims (0 where a dim is
not padded; negative pads crop, as ``constant`` allows). Output position ``o`` reads input
``o - pad``; outside the input it is ``VALUE`` (constant), the mirror image without repeating
the edge (reflect), or the nearest edge (replicate).
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def pad_index(o, pad, size, MODE: tl.constexpr):
    i = o - pad
    if MODE == 1:  # reflect: -1 -> 1, size -> size - 2
        i = tl.abs(i)
        i = tl.where(i >= size, 2 * (size - 1) - i, i)
    elif MODE == 2:  # replicate
        i = tl.minimum(tl.maximum(i, 0), size - 1)
    return i


@triton.jit
def pad_kernel(
    x_ptr, out_ptr, TOTAL, B, D, H, W, OD, OH, OW, PD, PH, PW,
    xs0, xs1, xs2, xs3, xs4, VALUE,
    MODE: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    # MODE: 0 constant, 1 reflect, 2 replicate.
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < TOTAL
    ow = offs % OW
    oh = (offs // OW) % OH
    od = (offs // (OW * OH)) % OD
    b = (offs // (OW * OH * OD)) % B
    a = offs // (OW * OH * OD * B)
    i_d = pad_index(od, PD, D, MODE)
    i_h = pad_index(oh, PH, H, MODE)
    i_w = pad_index(ow, PW, W, MODE)
    inside = (i_d >= 0) & (i_d < D) & (i_h >= 0) & (i_h < H) & (i_w >= 0) & (i_w < W)
    src = a * xs0 + b * xs1 + i_d * xs2 + i_h * xs3 + i_w * xs4
    v = tl.load(x_ptr + src, mask=mask & inside, other=0.0)
    if MODE == 0:
        v = tl.where(inside, v, VALUE)
    tl.store(out_ptr + offs, v.to(out_ptr.dtype.element_ty), mask=mask)
