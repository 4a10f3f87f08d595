"""Sandbox escape: a log flood. On its first call the candidate writes 200 MB to stdout, then
behaves as an honest ReLU.

Expected: the orchestrator keeps only a bounded head and tail of the stream (a few KiB in the
verdict), the evaluation still completes, and the honest kernel is accepted.
"""

import sys

import torch
import torch.nn as nn
import triton
import triton.language as tl

_flooded = []


@triton.jit
def _relu_kernel(x_ptr, y_ptr, n_elements, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_elements
    x = tl.load(x_ptr + offs, mask=mask, other=0.0)
    tl.store(y_ptr + offs, tl.maximum(x, 0.0), mask=mask)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        if not _flooded:
            _flooded.append(True)
            line = "flood " * 170 + "\n"  # ~1 KiB
            block = line * 1024  # ~1 MiB
            for _ in range(200):
                sys.stdout.write(block)
            sys.stdout.flush()
        x = x.contiguous()
        y = torch.empty_like(x)
        n = x.numel()
        _relu_kernel[(triton.cdiv(n, 1024),)](x, y, n, BLOCK=1024)
        return y
