"""Tensors made in ``forward`` rather than read: a constant fill (``torch.full(shape, v)``) and
the triangle of a matrix (``triu``/``tril``), which together make the causal mask eager attention
builds per call (``torch.triu(torch.full((t, t), min), diagonal=1)``), and the positions
``torch.arange`` gives a position embedding.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _fill_kernel(out_ptr, N, value, BLOCK: tl.constexpr):
    k = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    v = tl.full([BLOCK], 0.0, tl.float32) + value
    tl.store(out_ptr + k, v.to(out_ptr.dtype.element_ty), mask=k < N)


@triton.jit
def _triangle_kernel(x_ptr, out_ptr, M, N, xs0, xs1, xs2, DIAG,
                     UPPER: tl.constexpr, BN: tl.constexpr):  # fmt: skip
    # One program per (matrix, row) and BN columns; the output is contiguous [B, M, N]. Upper
    # keeps the elements on and above diagonal DIAG (col - row >= DIAG), lower on and below.
    pid = tl.program_id(0).to(tl.int64)
    b = pid // M
    row = pid % M
    col = tl.program_id(1).to(tl.int64) * BN + tl.arange(0, BN)
    inside = col < N
    x = tl.load(x_ptr + b * xs0 + row * xs1 + col * xs2, mask=inside, other=0.0)
    if UPPER:
        keep = col - row >= DIAG
    else:
        keep = col - row <= DIAG
    y = tl.where(keep, x, tl.zeros_like(x))
    tl.store(out_ptr + pid * N + col, y, mask=inside)


@triton.jit
def _arange_kernel(out_ptr, N, start, step, BLOCK: tl.constexpr):
    # start + k * step in int64 (positions past 2**31 stay exact), cast on the store
    k = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    v = start + k * step
    tl.store(out_ptr + k, v.to(out_ptr.dtype.element_ty), mask=k < N)
