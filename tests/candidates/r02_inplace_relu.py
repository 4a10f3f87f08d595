"""Threat row 2 (input mutation): compute ReLU in place, into the input, and return the input.

The values are right, but the forward wrote into its argument (a later reference on the same
buffer would "match", and in-place saves an allocation in the timing). The inputs are hashed
before and after the call: INPUT_MUTATED.
"""

import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def _relu_inplace(x_ptr, n_elements, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_elements
    x = tl.load(x_ptr + offs, mask=mask, other=0.0)
    tl.store(x_ptr + offs, tl.maximum(x, 0.0), mask=mask)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        n = x.numel()
        _relu_inplace[(triton.cdiv(n, 1024),)](x, n, BLOCK=1024)
        return x
