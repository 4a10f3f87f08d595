"""Threat row 8 (precision downgrade), for level1/14_matmul_square (float32 C = A @ B): the
tiles are rounded to bfloat16 before ``tl.dot`` (tensor-core speed), accumulating in fp32.

Each product loses ~3 decimal digits; the problem's atol (2e-2) rejects it: WRONG_OUTPUT.

Note on TF32: the same GEMM with ``tl.dot``'s default ``input_precision`` ("tf32") is the more
common downgrade, but the Triton CPU interpreter ignores ``input_precision`` (its dot is an exact
numpy float32 matmul), so under ``TRITON_INTERPRET=1`` a TF32 kernel computes full fp32 and would
pass. TF32 is therefore checked on a GPU only (tests/gpu/test_timing_gpu.py); on CPU this explicit
bf16 downcast stands in for it.
"""

import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def _matmul_bf16(
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
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k in range(0, K, BLOCK_K):
        kk = k + offs_k
        a = tl.load(
            a_ptr + offs_m[:, None] * stride_am + kk[None, :] * stride_ak,
            mask=(offs_m[:, None] < M) & (kk[None, :] < K),
            other=0.0,
        )
        b = tl.load(
            b_ptr + kk[:, None] * stride_bk + offs_n[None, :] * stride_bn,
            mask=(kk[:, None] < K) & (offs_n[None, :] < N),
            other=0.0,
        )
        a = a.to(tl.bfloat16).to(tl.float32)  # the cheat: only 8 mantissa bits survive
        b = b.to(tl.bfloat16).to(tl.float32)
        acc = tl.dot(a, b, acc, input_precision="ieee")
    c = c_ptr + offs_m[:, None] * stride_cm + offs_n[None, :] * stride_cn
    tl.store(c, acc, mask=(offs_m[:, None] < M) & (offs_n[None, :] < N))


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, A, B):
        M, K = A.shape
        N = B.shape[1]
        C = torch.empty((M, N), dtype=A.dtype, device=A.device)
        grid = (triton.cdiv(M, 32), triton.cdiv(N, 32))
        _matmul_bf16[grid](
            A,
            B,
            C,
            M,
            N,
            K,
            A.stride(0),
            A.stride(1),
            B.stride(0),
            B.stride(1),
            C.stride(0),
            C.stride(1),
            BLOCK_M=32,
            BLOCK_N=32,
            BLOCK_K=32,
        )
        return C
