"""Threat row 12 (shape hard-coding): the output shape is the problem's CPU size, hard-coded.

Right for every main trial (they use the size the Coder saw), wrong for the hold-out variant
(3 x 777): WRONG_SHAPE. The static gate cannot know which numbers are sizes.
"""

import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def _relu_kernel(x_ptr, y_ptr, n_elements, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_elements
    x = tl.load(x_ptr + offs, mask=mask, other=0.0)
    tl.store(y_ptr + offs, tl.maximum(x, 0.0), mask=mask)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        y = torch.empty((16, 1000), dtype=x.dtype, device=x.device)  # the cheat
        n = min(x.numel(), 16000)
        _relu_kernel[(triton.cdiv(n, 1024),)](x.contiguous(), y, n, BLOCK=1024)
        return y
