"""Threat row 9 (no kernel at all): ReLU as plain tensor arithmetic, ``x * (x > 0)``, behind a
decoy launch.

Operators on tensors are invisible to the static gate (it cannot know the operands are tensors),
so this passes the gate; the run-time op recorder sees ``gt`` and ``mul``: TORCH_OP_CALLED.
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
        return x * (x > 0)
