"""Known-good Triton solution: NCHW conv2d with bias as an implicit GEMM.

GEMM view: rows = output pixels (n, oh, ow), columns = output channels, reduction =
(kh, kw, c_in). The filter taps are unrolled at compile time, so the spatial index math and the
padding masks are computed once per tap; the inner loop walks input channels in BLOCK_K chunks,
gathering a [BLOCK_M, BLOCK_K] slab of the NCHW input (coalesced along ow) and a
[BLOCK_K, BLOCK_N] slab of the filter, pre-arranged as (KH, KW, C_in, C_out). Bias is fused in
the epilogue. fp32 dot with input_precision="ieee" (no TF32).
"""

import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def _conv2d_kernel(
    x_ptr,
    w_ptr,
    bias_ptr,
    y_ptr,
    NB,
    C_in,
    H,
    W,
    C_out,
    OH,
    OW,
    stride_h,
    stride_w,
    pad_h,
    pad_w,
    KH: tl.constexpr,
    KW: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    M = NB * OH * OW
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    mask_m = offs_m < M
    mask_n = offs_n < C_out
    n_img = offs_m // (OH * OW)
    pix = offs_m % (OH * OW)
    oh = pix // OW
    ow = pix % OW
    x_img = x_ptr + n_img.to(tl.int64) * C_in * H * W
    HW = H * W
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for kh in tl.static_range(KH):
        ih = oh * stride_h - pad_h + kh
        h_ok = mask_m & (ih >= 0) & (ih < H)
        for kw in tl.static_range(KW):
            iw = ow * stride_w - pad_w + kw
            row_ok = h_ok & (iw >= 0) & (iw < W)
            a_base = x_img + ih * W + iw
            w_tap = w_ptr + (kh * KW + kw) * C_in * C_out
            for c0 in range(0, C_in, BLOCK_K):
                ci = c0 + offs_k
                ci_ok = ci < C_in
                a = tl.load(
                    a_base[:, None] + ci[None, :] * HW,
                    mask=row_ok[:, None] & ci_ok[None, :],
                    other=0.0,
                )
                b = tl.load(
                    w_tap + ci[:, None] * C_out + offs_n[None, :],
                    mask=ci_ok[:, None] & mask_n[None, :],
                    other=0.0,
                )
                acc = tl.dot(a, b, acc, input_precision="ieee")
    bias = tl.load(bias_ptr + offs_n, mask=mask_n, other=0.0).to(tl.float32)
    acc += bias[None, :]
    y_ptrs = (
        y_ptr
        + n_img.to(tl.int64)[:, None] * C_out * OH * OW
        + offs_n[None, :] * (OH * OW)
        + pix[:, None]
    )
    tl.store(y_ptrs, acc.to(y_ptr.dtype.element_ty), mask=mask_m[:, None] & mask_n[None, :])


def _conv2d(
    x,
    weight,
    bias,
    stride,
    padding,
    BLOCK_M=128,
    BLOCK_N=None,
    BLOCK_K=16,
    num_warps=8,
    num_stages=4,
):
    # Defaults picked on an H100 at the GPU size (128x128x16, 8 warps, 4 stages: 2.8 ms vs 3.5 ms
    # for BLOCK_K=32, 3 stages).
    x = x.contiguous()
    NB, C_in, H, W = x.shape
    C_out, _, KH, KW = weight.shape
    # (C_out, C_in, KH, KW) -> (KH, KW, C_in, C_out): each tap is a row-major [C_in, C_out] matrix.
    w = weight.permute(2, 3, 1, 0).contiguous()
    sh, sw = stride
    ph, pw = padding
    OH = (H + 2 * ph - KH) // sh + 1
    OW = (W + 2 * pw - KW) // sw + 1
    y = torch.empty((NB, C_out, OH, OW), dtype=x.dtype, device=x.device)
    if BLOCK_N is None:
        BLOCK_N = max(16, min(128, triton.next_power_of_2(C_out)))
    grid = (triton.cdiv(NB * OH * OW, BLOCK_M), triton.cdiv(C_out, BLOCK_N))
    _conv2d_kernel[grid](
        x,
        w,
        bias,
        y,
        NB,
        C_in,
        H,
        W,
        C_out,
        OH,
        OW,
        sh,
        sw,
        ph,
        pw,
        KH=KH,
        KW=KW,
        BLOCK_M=BLOCK_M,
        BLOCK_N=BLOCK_N,
        BLOCK_K=BLOCK_K,
        num_warps=num_warps,
        num_stages=num_stages,
    )
    return y


class ModelNew(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size):
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride=1, padding=kernel_size // 2, bias=True
        )

    def forward(self, x):
        return _conv2d(x, self.conv.weight, self.conv.bias, self.conv.stride, self.conv.padding)
