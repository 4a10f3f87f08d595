"""The seed kernel of ``kernelloop.modules.conv``: conv2d (groups=1) as a Triton implicit GEMM.

GEMM view: rows M = N*OH*OW output pixels, columns = C_out output channels, reduction
K = KH*KW*C_in, walked tap by tap (kh, kw) and, within a tap, in BLOCK_K chunks of input
channels. Input patches are gathered on the fly (no im2col buffer): each K step loads a
[BLOCK_M, BLOCK_K] slab of x at the tap's shifted pixel positions, with masks standing in for
the zero padding, and a [BLOCK_K, BLOCK_N] slab of the filter. Bias and the activation are
applied to the fp32 accumulator before the one store.

The kernel addresses every tensor through (n, h, w, c) strides. It reads x channels-last: the
K loads are then contiguous, 16-byte vectors. NCHW x is copied to channels-last first (one pass
over x), because gathered NCHW loads stride by H*W along K: one useful element per 32-byte
sector, re-read 9x per filter tap. The output is written straight into x's memory format
(NCHW stores are still contiguous along the pixels a warp holds). The filter is read as
(C_out, KH, KW, C_in), so its K loads are contiguous as well.

The taps and channel chunks form ONE flat loop (not nested static loops) so that Triton
software-pipelines the whole reduction with ``num_stages``.

float32 inputs use ``input_precision="ieee"`` (no TF32): the float32 tolerance is 1e-4.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .conv_shapes import ACTIVATIONS as _NAMES
from .conv_shapes import channels_last, output_size

ACTIVATIONS = {name: code for code, name in enumerate(_NAMES)}  # the ACTIVATION constexpr


@triton.jit
def _activate(v, ACTIVATION: tl.constexpr):
    if ACTIVATION == 1:
        v = tl.maximum(v, 0.0)
    elif ACTIVATION == 2:  # exact (erf) GELU, as F.gelu's default
        v = 0.5 * v * (1.0 + tl.erf(v * 0.7071067811865476))
    elif ACTIVATION == 3:
        v = v * tl.sigmoid(v)
    return v


@triton.jit
def conv2d_kernel(
    x_ptr,
    w_ptr,
    b_ptr,
    y_ptr,
    M,  # N * OH * OW
    H,
    W,
    C_in,
    OH,
    OW,
    C_out,
    sxn,  # x strides, in (n, h, w, c) order
    sxh,
    sxw,
    sxc,
    swo,  # filter strides, in (c_out, kh, kw, c_in) order
    swh,
    sww,
    swc,
    syn,  # y strides, in (n, h, w, c) order
    syh,
    syw,
    syc,
    stride_h,
    stride_w,
    pad_h,
    pad_w,
    dil_h,
    dil_w,
    KH: tl.constexpr,
    KW: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    ACTIVATION: tl.constexpr,
    PRECISION: tl.constexpr,
    DOT_FP32: tl.constexpr,
    EVEN_K: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    GROUP_M: tl.constexpr,
):
    # Grouped launch order: GROUP_M row tiles share their filter columns while they sit in L2.
    pid = tl.program_id(0)
    num_m = tl.cdiv(M, BLOCK_M)
    num_n = tl.cdiv(C_out, BLOCK_N)
    per_group = GROUP_M * num_n
    first_m = (pid // per_group) * GROUP_M
    group_rows = min(num_m - first_m, GROUP_M)
    pid_m = first_m + (pid % per_group) % group_rows
    pid_n = (pid % per_group) // group_rows

    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    mask_m = offs_m < M
    mask_n = offs_n < C_out
    ow = offs_m % OW
    oh = (offs_m // OW) % OH
    img = offs_m // (OW * OH)
    ih0 = oh * stride_h - pad_h
    iw0 = ow * stride_w - pad_w
    x_img = x_ptr + img.to(tl.int64) * sxn  # int64: large batches overflow 32-bit offsets
    w_cols = w_ptr + offs_n * swo

    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    num_cb = tl.cdiv(C_in, BLOCK_K)
    for k in range(0, KH * KW * num_cb):
        tap = k // num_cb
        ci = (k - tap * num_cb) * BLOCK_K + offs_k
        kh = tap // KW
        kw = tap - kh * KW
        ih = ih0 + kh * dil_h
        iw = iw0 + kw * dil_w
        row_ok = mask_m & (ih >= 0) & (ih < H) & (iw >= 0) & (iw < W)  # zero padding
        if EVEN_K:  # no per-lane channel test: masks constant along K keep loads vectorised
            a_mask = row_ok[:, None]
            b_mask = mask_n[None, :]
        else:
            ci_ok = ci < C_in
            a_mask = row_ok[:, None] & ci_ok[None, :]
            b_mask = ci_ok[:, None] & mask_n[None, :]
        a = tl.load((x_img + ih * sxh + iw * sxw)[:, None] + ci[None, :] * sxc, a_mask, other=0.0)
        b = tl.load((w_cols + kh * swh + kw * sww)[None, :] + ci[:, None] * swc, b_mask, other=0.0)
        if DOT_FP32:
            acc = tl.dot(a.to(tl.float32), b.to(tl.float32), acc, input_precision="ieee")
        else:
            acc = tl.dot(a, b, acc, input_precision=PRECISION)

    if HAS_BIAS:
        acc += tl.load(b_ptr + offs_n, mask=mask_n, other=0.0).to(tl.float32)[None, :]
    acc = _activate(acc, ACTIVATION)
    y_rows = img.to(tl.int64) * syn + oh * syh + ow * syw
    tl.store(
        y_ptr + y_rows[:, None] + offs_n[None, :] * syc,
        acc.to(y_ptr.dtype.element_ty),
        mask=mask_m[:, None] & mask_n[None, :],
    )


def _gpu_configs() -> list[triton.Config]:
    # Tensor-core tiles for fp16/bf16 on sm_80+; pruned per call (see _prune) so tiny C_out or
    # C_in never pays for a 128-wide tile of masked lanes.
    shapes = [
        (128, 128, 64, 8, 3),
        (128, 128, 32, 4, 4),
        (128, 64, 64, 4, 4),
        (64, 128, 64, 4, 4),
        (64, 64, 64, 4, 4),
        (256, 64, 64, 8, 3),
        (128, 256, 64, 8, 3),
        (64, 32, 64, 4, 4),
        # narrow reductions (C_in <= 32: a stem layer's 3 channels, early layers' 16 or 32)
        (128, 64, 32, 4, 4),
        (64, 32, 32, 4, 4),
    ]
    return [
        triton.Config(
            {"BLOCK_M": bm, "BLOCK_N": bn, "BLOCK_K": bk, "GROUP_M": 8},
            num_warps=warps,
            num_stages=stages,
        )
        for bm, bn, bk, warps, stages in shapes
    ]


def _prune(configs, named_args, **kwargs):
    c_in, c_out = named_args["C_in"], named_args["C_out"]
    kept = [
        c
        for c in configs
        if c.kwargs["BLOCK_N"] <= max(32, triton.next_power_of_2(c_out))
        and c.kwargs["BLOCK_K"] <= max(32, triton.next_power_of_2(c_in))
    ]
    # Nothing fits (C_out and C_in both tiny): the smallest tile wastes the fewest masked lanes.
    return kept or [min(configs, key=lambda c: c.kwargs["BLOCK_N"] * c.kwargs["BLOCK_K"])]


_kernel = triton.heuristics({"EVEN_K": lambda args: args["C_in"] % args["BLOCK_K"] == 0})(
    conv2d_kernel
)
_tuned_kernel = triton.autotune(
    configs=_gpu_configs(),
    key=["M", "C_in", "C_out", "KH", "KW", "stride_h", "stride_w", "dil_h", "dil_w"],
    prune_configs_by={"early_config_prune": _prune},
)(_kernel)


def _fixed_config(m: int, c_in: int, c_out: int, element_size: int, on_gpu: bool) -> dict:
    """One sensible tile without tuning: float32 on a GPU (ieee dot on CUDA cores, 4-byte
    operands: smaller tiles), and the interpreter (few, large programs run fastest there)."""
    block_n = max(16, min(64, triton.next_power_of_2(c_out)))
    block_k = max(16, min(32 if element_size == 4 else 64, triton.next_power_of_2(c_in)))
    block_m = max(16, min(64 if on_gpu else 128, triton.next_power_of_2(m)))
    return {
        "BLOCK_M": block_m,
        "BLOCK_N": block_n,
        "BLOCK_K": block_k,
        "GROUP_M": 8,
        "num_warps": 4,
        "num_stages": 3 if on_gpu else 1,
    }


def conv2d(
    x: torch.Tensor,
    w: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: tuple[int, int] = (1, 1),
    padding: tuple[int, int] = (0, 0),
    dilation: tuple[int, int] = (1, 1),
    activation: str | None = None,
    *,
    config: dict | None = None,
) -> torch.Tensor:
    """act(conv2d(x, w) + bias), groups=1, zero padding; the output has x's memory format.

    ``config`` pins the tile (BLOCK_M, BLOCK_N, BLOCK_K, GROUP_M, num_warps, num_stages);
    without it fp16/bf16 on a GPU are autotuned per shape, everything else gets a fixed tile.
    """
    n, c_in, h, wd = x.shape
    c_out, c_in_w, kh, kw = w.shape
    if c_in_w != c_in:
        raise ValueError(f"filter expects {c_in_w} input channels, x has {c_in} (groups=1 only)")
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    oh, ow = output_size(h, kh, sh, ph, dh), output_size(wd, kw, sw, pw, dw)
    if oh <= 0 or ow <= 0:
        raise ValueError(f"the {kh}x{kw} filter does not fit the padded {h}x{wd} input")
    fmt = torch.channels_last if channels_last(x) else torch.contiguous_format
    y = torch.empty((n, c_out, oh, ow), dtype=x.dtype, device=x.device, memory_format=fmt)
    if y.numel() == 0:
        return y
    wk = w.permute(0, 2, 3, 1)  # (C_out, KH, KW, C_in): contiguous along K once copied
    if wk.stride(3) != 1:
        wk = wk.contiguous()
    if not channels_last(x):
        x = x.contiguous(memory_format=torch.channels_last)
    m = n * oh * ow
    args = (
        x, wk, bias if bias is not None else y, y,
        m, h, wd, c_in, oh, ow, c_out,
        x.stride(0), x.stride(2), x.stride(3), x.stride(1),
        *wk.stride(),
        y.stride(0), y.stride(2), y.stride(3), y.stride(1),
        sh, sw, ph, pw, dh, dw,
    )  # fmt: skip
    meta = {
        "KH": kh,
        "KW": kw,
        "HAS_BIAS": bias is not None,
        "ACTIVATION": ACTIVATIONS[activation],
        "PRECISION": "ieee" if x.dtype == torch.float32 else "tf32",
        # The interpreter (triton 3.9) multiplies bfloat16 dot operands as their raw uint16
        # bits; widened to float32 first, the products are exact and the sum is fp32, as on GPU.
        "DOT_FP32": x.dtype == torch.bfloat16 and x.device.type == "cpu",
    }
    on_gpu = x.device.type == "cuda"
    if config is None and on_gpu and x.dtype in (torch.float16, torch.bfloat16):

        def grid(meta):
            return (triton.cdiv(m, meta["BLOCK_M"]) * triton.cdiv(c_out, meta["BLOCK_N"]),)

        _tuned_kernel[grid](*args, **meta)
        return y
    cfg = config or _fixed_config(m, c_in, c_out, x.element_size(), on_gpu)
    grid = (triton.cdiv(m, cfg["BLOCK_M"]) * triton.cdiv(c_out, cfg["BLOCK_N"]),)
    _kernel[grid](*args, **meta, **cfg)
    return y
