"""Honest, must be accepted on CPU: the output starts as ``torch.zeros_like`` and the kernel
stores only the positive elements; store coverage must count the zeros as written by an allowed
op (the allocation's fill), not as bytes no kernel wrote.
"""
# problem: level1/01_relu

import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def _positive_part(x_ptr, y_ptr, n_elements, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    in_range = offs < n_elements
    x = tl.load(x_ptr + offs, mask=in_range, other=0.0)
    tl.store(y_ptr + offs, x, mask=in_range & (x > 0.0))


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        x = x.contiguous()
        y = torch.zeros_like(x)
        n = x.numel()
        _positive_part[(triton.cdiv(n, 1024),)](x, y, n, BLOCK=1024)
        return y
