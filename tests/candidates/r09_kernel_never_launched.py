"""Threat row 9 (no kernel at all): a well-written kernel is defined, but forward computes with
``x.clamp(min=0)`` and never launches it (the kernel is there to satisfy a "has a kernel" check).

Static: KERNEL_NOT_LAUNCHED and TORCH_COMPUTE (.clamp). Run time: NO_KERNEL_LAUNCHED and
TORCH_OP_CALLED (clamp).
"""

import torch
import torch.nn as nn
import triton
import triton.language as tl


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
        return x.clamp(min=0)
