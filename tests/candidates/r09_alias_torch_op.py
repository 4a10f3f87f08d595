"""Threat row 9 (no kernel at all): torch compute through an alias, behind a decoy launch.

``_act = torch.relu`` at module level hides the name from a scan for ``torch.relu(``; a tiny
kernel is launched so a launch counter is non-zero. Static: TORCH_COMPUTE (aliases are resolved).
Run time: TORCH_OP_CALLED.
"""

import torch
import torch.nn as nn
import triton
import triton.language as tl

_act = torch.relu


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
        return _act(x)
