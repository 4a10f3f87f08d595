"""Threat row 2 (input mutation): write the result into the input and return a reshaped view.

Returning ``x.view(...)`` instead of ``x`` hides the aliasing from an identity check; the input
hash taken before and after the call still differs: INPUT_MUTATED.
"""

import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def _relu_into(x_ptr, out_ptr, n_elements, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_elements
    x = tl.load(x_ptr + offs, mask=mask, other=0.0)
    tl.store(out_ptr + offs, tl.maximum(x, 0.0), mask=mask)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        flat = x.view(-1)
        n = flat.numel()
        _relu_into[(triton.cdiv(n, 1024),)](flat, flat, n, BLOCK=1024)
        return flat.view(x.shape)
