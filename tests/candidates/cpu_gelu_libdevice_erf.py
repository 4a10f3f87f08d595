"""Honest, must be accepted on CPU: exact GELU through ``libdevice.erf`` from
``triton.language.extra.cuda.libdevice`` (a builtin that finds no semantic under the bare
interpreter), imported by name as Liger-style code does.
"""
# problem: level1/02_gelu

import torch
import torch.nn as nn
import triton
import triton.language as tl
from triton.language.extra.cuda.libdevice import erf


@triton.jit
def _gelu_kernel(x_ptr, y_ptr, n_elements, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_elements
    x = tl.load(x_ptr + offs, mask=mask, other=0.0)
    tl.store(y_ptr + offs, 0.5 * x * (1.0 + erf(x * 0.7071067811865476)), mask=mask)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        x = x.contiguous()
        y = torch.empty_like(x)
        n = x.numel()
        _gelu_kernel[(triton.cdiv(n, 1024),)](x, y, n, BLOCK=1024)
        return y
