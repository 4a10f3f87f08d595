"""Known-good Triton solution: one program per row log-softmax.

Rows up to MAX_BLOCK wide are held in registers and read once; wider rows take an online
(max, sum) pass followed by a writing pass.
"""

import torch
import torch.nn as nn
import triton
import triton.language as tl

MAX_BLOCK = 16384


@triton.jit
def _log_softmax_kernel(
    x_ptr, y_ptr, n_cols, stride_x, stride_y, BLOCK: tl.constexpr, SINGLE: tl.constexpr
):
    row = tl.program_id(0).to(tl.int64)
    x_row = x_ptr + row * stride_x
    y_row = y_ptr + row * stride_y
    cols = tl.arange(0, BLOCK)
    if SINGLE:
        mask = cols < n_cols
        x = tl.load(x_row + cols, mask=mask, other=-float("inf")).to(tl.float32)
        m = tl.max(x, axis=0)
        xs = x - m
        s = tl.sum(tl.exp(xs), axis=0)
        tl.store(y_row + cols, (xs - tl.log(s)).to(y_ptr.dtype.element_ty), mask=mask)
    else:
        m = -float("inf")
        s = 0.0
        for start in range(0, n_cols, BLOCK):
            c = start + cols
            x = tl.load(x_row + c, mask=c < n_cols, other=-float("inf")).to(tl.float32)
            m_new = tl.maximum(m, tl.max(x, axis=0))
            s = s * tl.exp(m - m_new) + tl.sum(tl.exp(x - m_new), axis=0)
            m = m_new
        shift = m + tl.log(s)
        for start in range(0, n_cols, BLOCK):
            c = start + cols
            mask = c < n_cols
            x = tl.load(x_row + c, mask=mask, other=0.0).to(tl.float32)
            tl.store(y_row + c, (x - shift).to(y_ptr.dtype.element_ty), mask=mask)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        x = x.contiguous()
        n_cols = x.shape[1]
        y = torch.empty_like(x)
        block = triton.next_power_of_2(n_cols)
        single = block <= MAX_BLOCK
        block = min(block, MAX_BLOCK)
        num_warps = 4 if block <= 1024 else (8 if block <= 4096 else 16)
        _log_softmax_kernel[(x.shape[0],)](
            x,
            y,
            n_cols,
            x.stride(0),
            y.stride(0),
            BLOCK=block,
            SINGLE=single,
            num_warps=num_warps,
        )
        return y
