"""Threat row 17 (garbage reads that pass by luck): an output that differs from call to call.

The kernel adds pseudo-random noise of up to 5e-5, inside the float32 tolerance (1e-4), seeded
from a call counter, so no single comparison against the reference fails. This models results
that depend on uninitialised or racing memory. Two runs on the same inputs must agree far more
closely than the tolerance: NONDETERMINISTIC. The static gate sees nothing wrong.
"""

import torch
import torch.nn as nn
import triton
import triton.language as tl

_CALLS = [0]


@triton.jit
def _relu_noisy(x_ptr, y_ptr, n_elements, seed, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_elements
    x = tl.load(x_ptr + offs, mask=mask, other=0.0)
    noise = (tl.rand(seed, offs) - 0.5) * 1e-4
    tl.store(y_ptr + offs, tl.maximum(x, 0.0) + noise, mask=mask)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        _CALLS[0] += 1
        x = x.contiguous()
        y = torch.empty_like(x)
        n = x.numel()
        _relu_noisy[(triton.cdiv(n, 1024),)](x, y, n, 1234 + 7919 * _CALLS[0], BLOCK=1024)
        return y
