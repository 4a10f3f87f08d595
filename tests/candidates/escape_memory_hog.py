"""Sandbox escape: a memory hog. forward allocates 64 MiB blocks, touching every page, until
something stops it.

Expected: the address-space limit (MemoryError, reported as MEMORY_LIMIT) or the resident-memory
watchdog (MEMORY_LIMIT) ends it; the orchestrator survives.
"""

import torch
import torch.nn as nn
import triton
import triton.language as tl

_hoard = []


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
        while True:
            _hoard.append(b"\x01" * (64 << 20))
