"""Max and average pooling, 1-d to 3-d, fixed or adaptive windows, as two Triton kernels.

Every pool runs as a 3-d one: a 1-d or 2-d pool is passed unit leading spatial dims (size 1,
kernel 1, stride 1, no padding), so one index map serves every rank. Leading dims before the
spatial ones are ``(n, c)`` planes (``C`` splits a plane index, so strided and channels-last
inputs are read in place); the output is contiguous.

A program takes ``BLOCK`` consecutive outputs (of any planes: small planes still fill a block)
and walks their windows ``BT`` taps at a time as a ``[BLOCK, BT]`` tile, so a 2x2 window is one
step and a global (whole-plane) window a few wide ones rather than one step per tap.

- ``pool_kernel``: fixed windows; kernel, stride, padding and dilation are constexpr, so the
  tap loop and index arithmetic fold. Out-of-range taps are PyTorch's implicit padding: ``-inf``
  for a max, left out of an average's sum. The average's divisor follows ``avg_pool``: the
  window clipped to the padded input (``COUNT_PAD``), to the input, or ``DIVISOR``.
- ``adaptive_pool_kernel``: output ``o`` of ``O`` over an input of ``I`` reads
  ``[floor(o*I/O), ceil((o+1)*I/O))``; windows differ per output, so the tile spans the largest
  (``KD, KH, KW``, from the host) and masks each lane to its own.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def pool_kernel(
    x_ptr, out_ptr, TOTAL, C, D, H, W, OD, OH, OW, xs0, xs1, xs2, xs3, xs4,
    KD: tl.constexpr, KH: tl.constexpr, KW: tl.constexpr,
    SD: tl.constexpr, SH: tl.constexpr, SW: tl.constexpr,
    PD: tl.constexpr, PH: tl.constexpr, PW: tl.constexpr,
    DD: tl.constexpr, DH: tl.constexpr, DW: tl.constexpr,
    AVG: tl.constexpr, COUNT_PAD: tl.constexpr, DIVISOR: tl.constexpr,
    BLOCK: tl.constexpr, BT: tl.constexpr,
):  # fmt: skip
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    omask = offs < TOTAL
    # Positions inside a plane fit 32 bits (only the plane's base needs 64): half the
    # registers of the [BLOCK, BT] index tiles.
    ow = (offs % OW).to(tl.int32)
    oh = ((offs // OW) % OH).to(tl.int32)
    od = ((offs // (OW * OH)) % OD).to(tl.int32)
    plane = offs // (OW * OH * OD)
    base = x_ptr + (plane // C) * xs0 + (plane % C) * xs1
    d0 = od * SD - PD
    h0 = oh * SH - PH
    w0 = ow * SW - PW
    if AVG:
        acc = tl.zeros([BLOCK], tl.float32)
    else:
        acc = tl.full([BLOCK], -float("inf"), tl.float32)
    for t0 in tl.static_range(0, KD * KH * KW, BT):
        tap = t0 + tl.arange(0, BT)
        kd = tap // (KH * KW)
        kh = (tap // KW) % KH
        kw = tap % KW
        id_ = d0[:, None] + (kd * DD)[None, :]
        ih = h0[:, None] + (kh * DH)[None, :]
        iw = w0[:, None] + (kw * DW)[None, :]
        ok = omask[:, None] & (tap < KD * KH * KW)[None, :]
        ok = ok & (id_ >= 0) & (id_ < D) & (ih >= 0) & (ih < H) & (iw >= 0) & (iw < W)
        ptrs = base[:, None] + id_ * xs2 + ih * xs3 + iw * xs4
        if AVG:
            v = tl.load(ptrs, mask=ok, other=0.0).to(tl.float32)
            acc += tl.sum(v, axis=1)
        else:
            v = tl.load(ptrs, mask=ok, other=-float("inf")).to(tl.float32)
            acc = tl.maximum(acc, tl.max(v, axis=1))
    if AVG:
        if DIVISOR > 0:
            acc = acc / DIVISOR
        else:
            # The window's end clipped to the padded input, as avg_pool counts it.
            d1 = tl.minimum(d0 + KD, D + PD)
            h1 = tl.minimum(h0 + KH, H + PH)
            w1 = tl.minimum(w0 + KW, W + PW)
            if COUNT_PAD:
                count = (d1 - d0) * (h1 - h0) * (w1 - w0)
            else:
                count = (
                    (tl.minimum(d1, D) - tl.maximum(d0, 0))
                    * (tl.minimum(h1, H) - tl.maximum(h0, 0))
                    * (tl.minimum(w1, W) - tl.maximum(w0, 0))
                )
            acc = acc / tl.maximum(count, 1).to(tl.float32)
    tl.store(out_ptr + offs, acc.to(out_ptr.dtype.element_ty), mask=omask)


@triton.jit
def adaptive_pool_kernel(
    x_ptr, out_ptr, TOTAL, C, D, H, W, OD, OH, OW, xs0, xs1, xs2, xs3, xs4, KD, KH, KW,
    AVG: tl.constexpr, BLOCK: tl.constexpr, BT: tl.constexpr,
):  # fmt: skip
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    omask = offs < TOTAL
    ow = (offs % OW).to(tl.int32)
    oh = ((offs // OW) % OH).to(tl.int32)
    od = ((offs // (OW * OH)) % OD).to(tl.int32)
    plane = offs // (OW * OH * OD)
    base = x_ptr + (plane // C) * xs0 + (plane % C) * xs1
    d0 = (od * D) // OD
    h0 = (oh * H) // OH
    w0 = (ow * W) // OW
    d1 = ((od + 1) * D + OD - 1) // OD
    h1 = ((oh + 1) * H + OH - 1) // OH
    w1 = ((ow + 1) * W + OW - 1) // OW
    if AVG:
        acc = tl.zeros([BLOCK], tl.float32)
    else:
        acc = tl.full([BLOCK], -float("inf"), tl.float32)
    for t0 in range(0, KD * KH * KW, BT):
        tap = t0 + tl.arange(0, BT)
        kd = tap // (KH * KW)
        kh = (tap // KW) % KH
        kw = tap % KW
        id_ = d0[:, None] + kd[None, :]
        ih = h0[:, None] + kh[None, :]
        iw = w0[:, None] + kw[None, :]
        ok = omask[:, None] & (tap < KD * KH * KW)[None, :]
        ok = ok & (id_ < d1[:, None]) & (ih < h1[:, None]) & (iw < w1[:, None])
        ptrs = base[:, None] + id_ * xs2 + ih * xs3 + iw * xs4
        if AVG:
            v = tl.load(ptrs, mask=ok, other=0.0).to(tl.float32)
            acc += tl.sum(v, axis=1)
        else:
            v = tl.load(ptrs, mask=ok, other=-float("inf")).to(tl.float32)
            acc = tl.maximum(acc, tl.max(v, axis=1))
    if AVG:
        acc = acc / ((d1 - d0) * (h1 - h0) * (w1 - w0)).to(tl.float32)
    tl.store(out_ptr + offs, acc.to(out_ptr.dtype.element_ty), mask=omask)
