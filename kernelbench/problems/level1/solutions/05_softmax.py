"""Known-good Triton solution: one program per row softmax.

Rows up to MAX_BLOCK wide are held in registers and read once; wider rows take an online
(max, sum) pass followed by a normalising pass.
"""

import torch
import torch.nn as nn
import triton
import triton.language as tl

MAX_BLOCK = 16384


@triton.jit
def _softmax_kernel(
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
        e = tl.exp(x - m)
        s = tl.sum(e, axis=0)
        tl.store(y_row + cols, (e / s).to(y_ptr.dtype.element_ty), mask=mask)
    else:
        m = -float("inf")
        s = 0.0
        for start in range(0, n_cols, BLOCK):
            c = start + cols
            x = tl.load(x_row + c, mask=c < n_cols, other=-float("inf")).to(tl.float32)
            m_new = tl.maximum(m, tl.max(x, axis=0))
            s = s * tl.exp(m - m_new) + tl.sum(tl.exp(x - m_new), axis=0)
            m = m_new
        inv_s = 1.0 / s
        for start in range(0, n_cols, BLOCK):
            c = start + cols
            mask = c < n_cols
            x = tl.load(x_row + c, mask=mask, other=-float("inf")).to(tl.float32)
            tl.store(y_row + c, (tl.exp(x - m) * inv_s).to(y_ptr.dtype.element_ty), mask=mask)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        x = x.contiguous()
        n_cols = x.shape[-1]
        x2 = x.view(-1, n_cols)
        y = torch.empty_like(x2)
        block = triton.next_power_of_2(n_cols)
        single = block <= MAX_BLOCK
        block = min(block, MAX_BLOCK)
        num_warps = 4 if block <= 1024 else (8 if block <= 4096 else 16)
        _softmax_kernel[(x2.shape[0],)](
            x2,
            y,
            n_cols,
            x2.stride(0),
            y.stride(0),
            BLOCK=block,
            SINGLE=single,
            num_warps=num_warps,
        )
        return y.view(x.shape)
