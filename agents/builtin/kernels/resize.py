"""Resizing (``F.interpolate``, ``nn.Upsample``): nearest, nearest-exact and (bi/tri)linear
sampling of 1-d to 3-d inputs, as one Triton kernel.

Every resize runs as a 3-d one: a 1-d or 2-d input has unit leading spatial dims (size 1 in and
out), whose index is always 0 and whose interpolation weight is 0. Leading dims before the
spatial ones are ``(n, c)`` planes (``C`` splits a plane index, so strided and channels-last
inputs are read in place); the output is contiguous.

Source indices follow PyTorch's CPU kernels exactly (``UpSample.h``), since a nearest index off
by one is a wrong value, not a rounding error: the scale per dim is ``1 / scale_factor`` where
one was given, else ``in / out`` (``(in - 1) / (out - 1)`` with ``align_corners``), computed by
the host in double and passed as float32 as PyTorch casts it; nearest takes
``floor(o * scale)`` (with PyTorch's shortcuts for ``out == in`` and ``out == 2 * in``),
nearest-exact ``floor((o + 0.5) * scale)``, both clamped to ``in - 1``; linear reads the two
neighbours of ``scale * (o + 0.5) - 0.5`` (clamped at 0; ``scale * o`` with ``align_corners``)
and weighs them by the distance, in float32.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def resize_nearest_index(o, I, O, scale, EXACT: tl.constexpr):
    if EXACT:
        i = tl.floor((o.to(tl.float32) + 0.5) * scale).to(tl.int32)
    else:
        i = tl.floor(o.to(tl.float32) * scale).to(tl.int32)
        # PyTorch's shortcuts, exact whatever the scale says (a 2x scale factor given as 1.999).
        i = tl.where(O == 2 * I, o // 2, i)
        i = tl.where(O == I, o, i)
    return tl.minimum(i, I - 1)


@triton.jit
def resize_linear_index(o, I, scale, ALIGN: tl.constexpr):
    if ALIGN:
        r = scale * o.to(tl.float32)
    else:
        r = tl.maximum(scale * (o.to(tl.float32) + 0.5) - 0.5, 0.0)
    i0 = tl.minimum(r.to(tl.int32), I - 1)  # r >= 0: truncation is the floor
    i1 = tl.minimum(i0 + 1, I - 1)
    l1 = tl.minimum(tl.maximum(r - i0.to(tl.float32), 0.0), 1.0)
    return i0, i1, l1


@triton.jit
def resize_kernel(
    x_ptr, out_ptr, TOTAL, C, ID, IH, IW, OD, OH, OW, xs0, xs1, xs2, xs3, xs4, sd, sh, sw,
    MODE: tl.constexpr, ALIGN: tl.constexpr, DEPTH: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    # MODE: 0 nearest, 1 nearest-exact, 2 linear; DEPTH: the leading spatial dim is a real one.
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < TOTAL
    ow = (offs % OW).to(tl.int32)
    oh = ((offs // OW) % OH).to(tl.int32)
    od = ((offs // (OW * OH)) % OD).to(tl.int32)
    plane = offs // (OW * OH * OD)
    base = x_ptr + (plane // C) * xs0 + (plane % C) * xs1
    if MODE == 2:
        h0, h1, lh = resize_linear_index(oh, IH, sh, ALIGN)
        w0, w1, lw = resize_linear_index(ow, IW, sw, ALIGN)
        d0, d1, ld = resize_linear_index(od, ID, sd, ALIGN)
        top = base + d0 * xs2
        a = tl.load(top + h0 * xs3 + w0 * xs4, mask=mask, other=0.0).to(tl.float32)
        b = tl.load(top + h0 * xs3 + w1 * xs4, mask=mask, other=0.0).to(tl.float32)
        c = tl.load(top + h1 * xs3 + w0 * xs4, mask=mask, other=0.0).to(tl.float32)
        e = tl.load(top + h1 * xs3 + w1 * xs4, mask=mask, other=0.0).to(tl.float32)
        acc = (1.0 - lh) * ((1.0 - lw) * a + lw * b) + lh * ((1.0 - lw) * c + lw * e)
        if DEPTH:
            bottom = base + d1 * xs2
            a = tl.load(bottom + h0 * xs3 + w0 * xs4, mask=mask, other=0.0).to(tl.float32)
            b = tl.load(bottom + h0 * xs3 + w1 * xs4, mask=mask, other=0.0).to(tl.float32)
            c = tl.load(bottom + h1 * xs3 + w0 * xs4, mask=mask, other=0.0).to(tl.float32)
            e = tl.load(bottom + h1 * xs3 + w1 * xs4, mask=mask, other=0.0).to(tl.float32)
            far = (1.0 - lh) * ((1.0 - lw) * a + lw * b) + lh * ((1.0 - lw) * c + lw * e)
            acc = (1.0 - ld) * acc + ld * far
        value = acc
    else:
        i_d = resize_nearest_index(od, ID, OD, sd, MODE == 1)
        i_h = resize_nearest_index(oh, IH, OH, sh, MODE == 1)
        i_w = resize_nearest_index(ow, IW, OW, sw, MODE == 1)
        value = tl.load(base + i_d * xs2 + i_h * xs3 + i_w * xs4, mask=mask, other=0.0)
    tl.store(out_ptr + offs, value.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def pixel_shuffle_kernel(
    x_ptr, out_ptr, TOTAL, C, H, W, xs0, xs1, xs2, xs3,
    R: tl.constexpr, UNSHUFFLE: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    # A permuted copy: C, H, W are the output's (contiguous) dims; the input is read through
    # its strides. Shuffle: out[n, c, h, w] = x[n, c*R*R + (h%R)*R + w%R, h//R, w//R];
    # unshuffle is its inverse.
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < TOTAL
    w = offs % W
    h = (offs // W) % H
    c = (offs // (W * H)) % C
    n = offs // (W * H * C)
    if UNSHUFFLE:
        src = n * xs0 + (c // (R * R)) * xs1 + (h * R + (c // R) % R) * xs2 + (w * R + c % R) * xs3
    else:
        src = n * xs0 + (c * R * R + (h % R) * R + w % R) * xs1 + (h // R) * xs2 + (w // R) * xs3
    tl.store(out_ptr + offs, tl.load(x_ptr + src, mask=mask), mask=mask)
