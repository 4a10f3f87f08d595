"""Threat row 5 (lazy/fake tensors): return a ``torch.Tensor`` subclass whose ``__eq__`` and
``allclose``-relevant methods claim a match, with nothing computed.

Static: TENSOR_SUBCLASS (class derives from torch.Tensor, ``as_subclass``). Run time: the worker
requires outputs that are exactly ``torch.Tensor``: OUTPUT_NOT_TENSOR.
"""

import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def _touch(s_ptr, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    tl.store(s_ptr + offs, tl.zeros((BLOCK,), dtype=tl.float32))


class AlwaysEqual(torch.Tensor):
    def __eq__(self, other):
        return torch.ones_like(other, dtype=torch.bool)

    def __sub__(self, other):
        return torch.zeros_like(other)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        scratch = torch.empty(16, device=x.device, dtype=torch.float32)
        _touch[(1,)](scratch, BLOCK=16)
        return torch.empty_like(x).as_subclass(AlwaysEqual)
