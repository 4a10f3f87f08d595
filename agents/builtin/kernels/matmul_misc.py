"""Matrix products with structure the general GEMM would waste work on.

- ``_tri_matmul``: ``triu``/``tril`` of ``A @ B`` (batched on grid axis 1). A tile that lies
  wholly on the zeroed side of the diagonal stores zeros without running its K loop, so a
  triangular result costs about half a full product; the tiles the diagonal crosses are masked
  element by element. Only the result's shape is used: nothing is assumed about A or B.
- ``_gemv``: ``A @ x`` for a vector (or one-column matrix) ``x``: each program reduces
  ``BLOCK_M`` rows over K in ``BLOCK_K`` chunks, a memory-bound stream with no padding to a
  tensor-core tile. ``x`` is read through a stride, so ``x @ A`` is the same kernel over
  ``A``'s transpose.
- ``_diag_scale``: ``diag(v) @ B`` (rows scaled) or ``B @ diag(v)`` (columns scaled): one read
  of ``B`` instead of a dense product with a mostly-zero matrix.

float32 dots use ``input_precision="ieee"`` (the reference runs with TF32 off).
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _tri_matmul(a_ptr, b_ptr, c_ptr, M, N, K, s_ab, s_am, s_ak, s_bb, s_bk, s_bn,
                s_cb, s_cm, s_cn, DIAG, UPPER: tl.constexpr, FP32_DOT: tl.constexpr,
                PRECISION: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr):  # fmt: skip
    pid = tl.program_id(0)
    pid_b = tl.program_id(1).to(tl.int64)
    num_m = tl.cdiv(M, BLOCK_M)
    num_n = tl.cdiv(N, BLOCK_N)
    per_group = GROUP_M * num_n
    first_m = (pid // per_group) * GROUP_M
    group_rows = min(num_m - first_m, GROUP_M)
    pid_m = first_m + (pid % per_group) % group_rows
    pid_n = (pid % per_group) // group_rows
    offs_m = (pid_m * BLOCK_M + tl.arange(0, BLOCK_M)).to(tl.int64)
    offs_n = (pid_n * BLOCK_N + tl.arange(0, BLOCK_N)).to(tl.int64)
    mask_m = offs_m < M
    mask_n = offs_n < N
    # Element (i, j) survives triu when j - i >= DIAG, tril when j - i <= DIAG.
    if UPPER:
        live = (pid_n * BLOCK_N + BLOCK_N - 1) - pid_m * BLOCK_M >= DIAG
    else:
        live = pid_n * BLOCK_N - (pid_m * BLOCK_M + BLOCK_M - 1) <= DIAG
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    if live:
        offs_k = tl.arange(0, BLOCK_K)
        a_ptrs = a_ptr + pid_b * s_ab + offs_m[:, None] * s_am + offs_k[None, :] * s_ak
        b_ptrs = b_ptr + pid_b * s_bb + offs_k[:, None] * s_bk + offs_n[None, :] * s_bn
        for k in range(0, K, BLOCK_K):
            k_ok = offs_k < K - k
            a = tl.load(a_ptrs, mask=mask_m[:, None] & k_ok[None, :], other=0.0)
            b = tl.load(b_ptrs, mask=k_ok[:, None] & mask_n[None, :], other=0.0)
            if FP32_DOT:
                acc = tl.dot(a.to(tl.float32), b.to(tl.float32), acc, input_precision="ieee")
            else:
                acc = tl.dot(a, b, acc, input_precision=PRECISION)
            a_ptrs += BLOCK_K * s_ak
            b_ptrs += BLOCK_K * s_bk
    gap = offs_n[None, :] - offs_m[:, None]
    if UPPER:
        acc = tl.where(gap >= DIAG, acc, 0.0)
    else:
        acc = tl.where(gap <= DIAG, acc, 0.0)
    c_ptrs = c_ptr + pid_b * s_cb + offs_m[:, None] * s_cm + offs_n[None, :] * s_cn
    tl.store(c_ptrs, acc.to(c_ptr.dtype.element_ty), mask=mask_m[:, None] & mask_n[None, :])


@triton.jit
def _gemv(a_ptr, x_ptr, y_ptr, M, K, s_am, s_ak, s_x,
          BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr):  # fmt: skip
    rows = (tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)).to(tl.int64)
    row_ok = rows < M
    cols = tl.arange(0, BLOCK_K)
    acc = tl.zeros((BLOCK_M, BLOCK_K), dtype=tl.float32)
    for k in range(0, K, BLOCK_K):
        ks = (k + cols).to(tl.int64)
        k_ok = ks < K
        a = tl.load(a_ptr + rows[:, None] * s_am + ks[None, :] * s_ak,
                    mask=row_ok[:, None] & k_ok[None, :], other=0.0)  # fmt: skip
        x = tl.load(x_ptr + ks * s_x, mask=k_ok, other=0.0)
        acc += a.to(tl.float32) * x.to(tl.float32)[None, :]
    tl.store(y_ptr + rows, tl.sum(acc, axis=1).to(y_ptr.dtype.element_ty), mask=row_ok)


@triton.jit
def _diag_scale(v_ptr, b_ptr, out_ptr, M, N, s_v, s_bm, s_bn, ROWS: tl.constexpr,
                BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):  # fmt: skip
    offs_m = (tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)).to(tl.int64)
    offs_n = (tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)).to(tl.int64)
    mask = (offs_m < M)[:, None] & (offs_n < N)[None, :]
    b = tl.load(b_ptr + offs_m[:, None] * s_bm + offs_n[None, :] * s_bn, mask=mask, other=0.0)
    if ROWS:
        v = tl.load(v_ptr + offs_m * s_v, mask=offs_m < M, other=0.0).to(tl.float32)[:, None]
    else:
        v = tl.load(v_ptr + offs_n * s_v, mask=offs_n < N, other=0.0).to(tl.float32)[None, :]
    out = b.to(tl.float32) * v
    tl.store(out_ptr + offs_m[:, None] * N + offs_n[None, :], out.to(out_ptr.dtype.element_ty),
             mask=mask)  # fmt: skip
