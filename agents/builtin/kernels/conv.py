"""Convolution and transposed convolution, 1-d to 3-d, as one Triton implicit GEMM.

Every conv runs as a 3-d one: the host views a 1-d or 2-d conv with unit leading spatial dims
(size 1, kernel 1, stride 1, no padding), so one kernel and one index map serve every rank, and
the unit dims cost nothing because their extents are constexpr.

GEMM view: rows are output positions (n, od, oh, ow), columns output channels, and the reduction
runs over (tap, input channel of the column's group), tap-major so that a chunk of channels of
one tap is contiguous in channels-last x. Two ways to walk it, picked by ``DOT``:

- ``DOT``: a program takes ``BLOCK_N`` output channels of ONE group and reduces the flattened
  (tap, channel) axis in ``BLOCK_K`` chunks with ``tl.dot``. Flattening keeps a narrow input
  (3 channels, 27 taps) to a few wide steps instead of 27 mostly-masked ones.
- direct: a program takes ``BLOCK_N`` output channels across groups (each column reads its own
  group's channels, so x is gathered as a [rows, K chunk, columns] tile) and reduces the chunk
  with broadcast FMAs and a sum. For depthwise and narrow groups, where one group's channels
  would fill a dot's >= 16-wide column tile mostly with padding; ``BLOCK_K`` may be small.

A transposed conv gathers instead of scattering: output ``o`` reads input ``i`` through tap
``k`` when ``o = i * stride - pad + k * dil``, i.e. when ``(o + pad - k * dil) / stride`` is an
exact, in-range quotient; the other taps are masked. The filter is addressed through (group,
column, channel) strides, so the conv layout ``(C_out, C_in/g, k...)`` and the transposed one
``(C_in, C_out/g, k...)`` are both read in place.

Geometry (kernel, stride, padding, dilation) is constexpr: each geometry compiles its own
kernel with the index arithmetic folded, and a reader sees the loop bounds the kernel runs.
float32 dots use ``input_precision="ieee"`` (no TF32): the float32 tolerance is 1e-4.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def conv_source(o, k, size, STRIDE: tl.constexpr, PAD: tl.constexpr, DIL: tl.constexpr,
                TRANSPOSED: tl.constexpr):  # fmt: skip
    # The input index that output index ``o`` reads through tap ``k``, and whether it exists
    # (out-of-range indices are the zero padding).
    if TRANSPOSED:
        t = o + PAD - k * DIL
        i = t // STRIDE
        ok = (t >= 0) & (i * STRIDE == t) & (i < size)
    else:
        i = o * STRIDE - PAD + k * DIL
        ok = (i >= 0) & (i < size)
    return i, ok


@triton.jit
def conv_kernel(
    x_ptr,
    w_ptr,
    b_ptr,
    y_ptr,
    M,  # N * OD * OH * OW
    C_IN_G,  # input channels per group
    C_OUT_G,  # output channels per group
    C_OUT,
    D,
    H,
    W,
    OD,
    OH,
    OW,
    sxn,  # x strides, in (n, c, d, h, w) order
    sxc,
    sxd,
    sxh,
    sxw,
    swg,  # filter strides: per group, per output channel of a group, per input channel of a
    swo,  # group, then per tap (d, h, w)
    swi,
    swd,
    swh,
    sww,
    syn,  # y strides, in (n, c, d, h, w) order
    syc,
    syd,
    syh,
    syw,
    # (the builtin template splices its fused epilogue's operands in here)
    KD: tl.constexpr,
    KH: tl.constexpr,
    KW: tl.constexpr,
    STRIDE_D: tl.constexpr,
    STRIDE_H: tl.constexpr,
    STRIDE_W: tl.constexpr,
    PAD_D: tl.constexpr,
    PAD_H: tl.constexpr,
    PAD_W: tl.constexpr,
    DIL_D: tl.constexpr,
    DIL_H: tl.constexpr,
    DIL_W: tl.constexpr,
    TRANSPOSED: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    DOT: tl.constexpr,
    PRECISION: tl.constexpr,
    DOT_FP32: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    offs_m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    pid_n = tl.program_id(1)
    mask_m = offs_m < M
    ow = offs_m % OW
    rest = offs_m // OW
    oh = rest % OH
    rest = rest // OH
    od = rest % OD
    img = rest // OD
    x_rows = x_ptr + img.to(tl.int64) * sxn  # int64: large batches overflow 32-bit offsets
    k_total = C_IN_G * (KD * KH * KW)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    if DOT:
        tiles = tl.cdiv(C_OUT_G, BLOCK_N)
        g = pid_n // tiles
        cols = (pid_n - g * tiles) * BLOCK_N + tl.arange(0, BLOCK_N)
        mask_n = cols < C_OUT_G
        co = g * C_OUT_G + cols
        x_rows += g * C_IN_G * sxc
    else:
        co = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        mask_n = co < C_OUT
        g = co // C_OUT_G
        cols = co - g * C_OUT_G
        x_cols = g * C_IN_G * sxc
    w_cols = w_ptr + g * swg + cols * swo
    for k0 in range(0, k_total, BLOCK_K):
        kk = k0 + tl.arange(0, BLOCK_K)
        k_ok = kk < k_total
        ci = kk % C_IN_G
        tap = kk // C_IN_G
        kw = tap % KW
        kh = (tap // KW) % KH
        kd = tap // (KW * KH)
        i_d, ok_d = conv_source(od[:, None], kd[None, :], D, STRIDE_D, PAD_D, DIL_D, TRANSPOSED)
        i_h, ok_h = conv_source(oh[:, None], kh[None, :], H, STRIDE_H, PAD_H, DIL_H, TRANSPOSED)
        i_w, ok_w = conv_source(ow[:, None], kw[None, :], W, STRIDE_W, PAD_W, DIL_W, TRANSPOSED)
        a_mask = mask_m[:, None] & k_ok[None, :] & ok_d & ok_h & ok_w
        a_ptrs = x_rows[:, None] + ci[None, :] * sxc + i_d * sxd + i_h * sxh + i_w * sxw
        w_k = ci * swi + kd * swd + kh * swh + kw * sww
        b = tl.load(w_cols[None, :] + w_k[:, None], mask=k_ok[:, None] & mask_n[None, :], other=0.0)
        if DOT:
            a = tl.load(a_ptrs, mask=a_mask, other=0.0)
            if DOT_FP32:  # the interpreter multiplies bfloat16 dot operands wrongly
                acc = tl.dot(a.to(tl.float32), b.to(tl.float32), acc, input_precision="ieee")
            else:
                acc = tl.dot(a, b, acc, input_precision=PRECISION)
        else:  # [rows, taps x channels, columns]: each column reads its own group's channels
            a_mask = a_mask[:, :, None] & mask_n[None, None, :]
            a = tl.load(a_ptrs[:, :, None] + x_cols[None, None, :], mask=a_mask, other=0.0)
            acc += tl.sum(a.to(tl.float32) * b.to(tl.float32)[None, :, :], axis=1)

    if HAS_BIAS:
        acc += tl.load(b_ptr + co, mask=mask_n, other=0.0).to(tl.float32)[None, :]
    mask = mask_m[:, None] & mask_n[None, :]
    # (the builtin template splices its fused epilogue in here: it reads acc, mask,
    # img, od, oh, ow and co, and leaves the result in acc)
    y_rows = img.to(tl.int64) * syn + od * syd + oh * syh + ow * syw
    tl.store(y_ptr + y_rows[:, None] + co[None, :] * syc, acc.to(y_ptr.dtype.element_ty), mask=mask)
