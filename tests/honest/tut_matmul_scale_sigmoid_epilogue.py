"""Triton tutorial 03 style GEMM with a fused `sigmoid(scale * acc)` epilogue and compile-time checks.

Idioms: a runtime Python float `scale` multiplied into the fp32 accumulator; `tl.sigmoid`;
`tl.static_assert` on tile shapes; a K loop written with `tl.range(0, K, BLOCK_K, num_stages=...)`
(pipelining hint) and pointer increments; `x.new_empty((M, N))` allocation; the weight stored
(in_features, out_features) read through its own `.stride()`s; `typing` hints on the host wrapper.
(Tutorial 08's `tl.make_block_ptr`/`tl.advance` were the first choice, but Triton 3.9, the CPU CI's,
removed block pointers in favour of tensor descriptors.)
"""
# problem: level2/09_matmul_scale_sigmoid

import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def matmul_scale_sigmoid_kernel(
    a_ptr,
    b_ptr,
    c_ptr,
    M,
    N,
    K,
    stride_am,
    stride_ak,
    stride_bk,
    stride_bn,
    stride_cm,
    stride_cn,
    scale,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    NUM_STAGES: tl.constexpr,
):
    tl.static_assert(BLOCK_K >= 16, "tl.dot needs K tiles of at least 16")
    tl.static_assert(BLOCK_M % 16 == 0 and BLOCK_N % 16 == 0)
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    a_ptrs = a_ptr + offs_m[:, None] * stride_am + offs_k[None, :] * stride_ak
    b_ptrs = b_ptr + offs_k[:, None] * stride_bk + offs_n[None, :] * stride_bn
    accumulator = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in tl.range(0, K, BLOCK_K, num_stages=NUM_STAGES):
        a = tl.load(a_ptrs, mask=(offs_m[:, None] < M) & (offs_k[None, :] < K - k0), other=0.0)
        b = tl.load(b_ptrs, mask=(offs_k[:, None] < K - k0) & (offs_n[None, :] < N), other=0.0)
        accumulator = tl.dot(a, b, accumulator, input_precision="ieee")
        a_ptrs += BLOCK_K * stride_ak
        b_ptrs += BLOCK_K * stride_bk
    c = tl.sigmoid(accumulator * scale)
    c_ptrs = c_ptr + offs_m[:, None] * stride_cm + offs_n[None, :] * stride_cn
    tl.store(
        c_ptrs, c.to(c_ptr.dtype.element_ty), mask=(offs_m[:, None] < M) & (offs_n[None, :] < N)
    )


def matmul_scale_sigmoid(x: torch.Tensor, weight: torch.Tensor, scale: float) -> torch.Tensor:
    assert x.shape[1] == weight.shape[0], "x is (M, K), weight is (K, N)"
    M, K = x.shape
    N = weight.shape[1]
    out = x.new_empty((M, N))
    BLOCK_M, BLOCK_N, BLOCK_K = 64, 64, 32
    grid = (triton.cdiv(M, BLOCK_M), triton.cdiv(N, BLOCK_N))
    matmul_scale_sigmoid_kernel[grid](
        x,
        weight,
        out,
        M,
        N,
        K,
        x.stride(0),
        x.stride(1),
        weight.stride(0),
        weight.stride(1),
        out.stride(0),
        out.stride(1),
        scale,
        BLOCK_M=BLOCK_M,
        BLOCK_N=BLOCK_N,
        BLOCK_K=BLOCK_K,
        NUM_STAGES=3,
        num_warps=4,
    )
    return out


class ModelNew(nn.Module):
    def __init__(self, in_features, out_features, scale):
        super().__init__()
        self.scale = scale
        self.weight = nn.Parameter(torch.empty(in_features, out_features))

    def forward(self, x):
        return matmul_scale_sigmoid(x, self.weight, self.scale)
