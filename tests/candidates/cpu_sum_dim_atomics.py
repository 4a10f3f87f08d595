"""Honest, must be accepted on CPU: a split reduction where each program sums a chunk of rows and
``tl.atomic_add``s its partial sums into a ``torch.zeros`` output. Atomics commute, so the result
holds in any program order (up to rounding); store coverage must follow the atomics.
"""
# problem: level1/09_sum_dim

import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def _partial_sums(x_ptr, y_ptr, n_rows, n_cols, ROWS: tl.constexpr, BLOCK_C: tl.constexpr):
    batch = tl.program_id(0).to(tl.int64)
    chunk = tl.program_id(1)
    cols = tl.program_id(2) * BLOCK_C + tl.arange(0, BLOCK_C)
    rows = chunk * ROWS + tl.arange(0, ROWS)
    mask = (rows[:, None] < n_rows) & (cols[None, :] < n_cols)
    x = tl.load(
        x_ptr + batch * n_rows * n_cols + rows[:, None] * n_cols + cols[None, :],
        mask=mask,
        other=0.0,
    )
    tl.atomic_add(y_ptr + batch * n_cols + cols, tl.sum(x, axis=0), mask=cols < n_cols)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        x = x.contiguous()
        batch, n_rows, n_cols = x.shape
        y = torch.zeros(batch, 1, n_cols, device=x.device, dtype=x.dtype)
        ROWS, BLOCK_C = 16, 64
        grid = (batch, triton.cdiv(n_rows, ROWS), triton.cdiv(n_cols, BLOCK_C))
        _partial_sums[grid](x, y, n_rows, n_cols, ROWS=ROWS, BLOCK_C=BLOCK_C)
        return y
