"""Threat row 9 (no kernel at all): look the torch op up by a computed name, behind a decoy
launch, so no literal ``relu`` appears next to ``torch``.

Static: DYNAMIC_CODE (getattr with a computed name on a module). Run time: TORCH_OP_CALLED.
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
        self.name = "re" + "lu"

    def forward(self, x):
        scratch = torch.empty(16, device=x.device, dtype=torch.float32)
        _touch[(1,)](scratch, BLOCK=16)
        return getattr(torch, self.name)(x)
