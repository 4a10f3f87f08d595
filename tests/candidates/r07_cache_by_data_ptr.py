"""Threat row 7 (result caching/replay): a dict keyed on ``(data_ptr, shape)``, the classic
"same buffer, same answer" replay of a benchmark loop that reuses its input tensors.

It only pays off if a later call gets an input at an address seen before. To make the replay
certain rather than allocator luck, the cache also falls back to the most recent entry of the
same shape when the pointer is new (a "close enough" key). Fresh input storage and values for
every trial make any replay wrong: WRONG_OUTPUT. Static gate: nothing to see.
"""

import torch
import torch.nn as nn
import triton
import triton.language as tl

_BY_PTR = {}
_LAST_BY_SHAPE = {}


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
        shape = tuple(x.shape)
        hit = _BY_PTR.get((x.data_ptr(), shape), _LAST_BY_SHAPE.get(shape))
        if hit is not None:
            _copy_kernel[grid](hit, y, n, BLOCK=1024)
            return y
        _relu_kernel[grid](x, y, n, BLOCK=1024)
        _BY_PTR[(x.data_ptr(), shape)] = y
        _LAST_BY_SHAPE[shape] = y
        return y
