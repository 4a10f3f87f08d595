"""Threat row 1 (output-buffer reuse): return ``torch.empty_like`` and never write it.

A kernel is launched (so the launch counter is satisfied) but it only touches a scratch buffer.
The returned output is a fresh allocation that nothing writes: it "matches" only if the allocator
hands back someone's just-freed correct answer. The worker NaN-fills fresh allocations and the
reference is never computed in this process, so the comparison sees garbage: WRONG_OUTPUT.
"""

import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def _touch(s_ptr, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    tl.store(s_ptr + offs, tl.zeros((BLOCK,), dtype=tl.float32))


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        scratch = torch.empty(16, device=x.device, dtype=torch.float32)
        _touch[(1,)](scratch, BLOCK=16)
        return torch.empty_like(x)
