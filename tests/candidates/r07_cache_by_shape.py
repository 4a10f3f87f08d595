"""Threat row 7 (result caching/replay): a module-level dict keyed on the input's shape.

The first call per shape computes honestly; later calls with the same shape replay the stored
output through a copy kernel (so a kernel still launches). Every trial has fresh input values
from a secret per-trial seed, so the replayed output is wrong: WRONG_OUTPUT. Nothing here is
visible to the static gate (plain dict use), so this is the run-time layer's catch.
"""

import torch
import torch.nn as nn
import triton
import triton.language as tl

_CACHE = {}


@triton.jit
def _relu_kernel(x_ptr, y_ptr, n_elements, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_elements
    x = tl.load(x_ptr + offs, mask=mask, other=0.0)
    tl.store(y_ptr + offs, tl.maximum(x, 0.0), mask=mask)


@triton.jit
def _copy_kernel(src_ptr, dst_ptr, n_elements, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_elements
    tl.store(dst_ptr + offs, tl.load(src_ptr + offs, mask=mask), mask=mask)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        x = x.contiguous()
        y = torch.empty_like(x)
        n = x.numel()
        grid = (triton.cdiv(n, 1024),)
        key = tuple(x.shape)
        if key in _CACHE:
            _copy_kernel[grid](_CACHE[key], y, n, BLOCK=1024)
            return y
        _relu_kernel[grid](x, y, n, BLOCK=1024)
        _CACHE[key] = y
        return y
