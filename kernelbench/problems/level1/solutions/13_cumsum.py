"""Known-good Triton solution: one program per row inclusive scan.

The row is processed in chunks of up to MAX_BLOCK elements: an in-register tree scan
(tl.cumsum) per chunk plus the running total carried from the previous chunks.
"""

import torch
import torch.nn as nn
import triton
import triton.language as tl

MAX_BLOCK = 4096


@triton.jit
def _cumsum_kernel(x_ptr, y_ptr, n_cols, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    x_row = x_ptr + row * n_cols
    y_row = y_ptr + row * n_cols
    cols = tl.arange(0, BLOCK)
    carry = 0.0
    for start in range(0, n_cols, BLOCK):
        c = start + cols
        mask = c < n_cols
        x = tl.load(x_row + c, mask=mask, other=0.0).to(tl.float32)
        s = tl.cumsum(x, axis=0) + carry
        tl.store(y_row + c, s.to(y_ptr.dtype.element_ty), mask=mask)
        carry += tl.sum(x, axis=0)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        x = x.contiguous()
        n_cols = x.shape[1]
        y = torch.empty_like(x)
        BLOCK = min(MAX_BLOCK, triton.next_power_of_2(n_cols))
        num_warps = 4 if BLOCK <= 1024 else 8
        _cumsum_kernel[(x.shape[0],)](x, y, n_cols, BLOCK=BLOCK, num_warps=num_warps)
        return y
