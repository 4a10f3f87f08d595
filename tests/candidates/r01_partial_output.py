"""Threat row 1 (output-buffer reuse): a partial kernel that writes only the first half.

The second half of the output is whatever the allocator handed back. Poisoned (NaN-filled) fresh
allocations plus trusted comparison make the unwritten half mismatch: WRONG_OUTPUT.
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
        x = x.contiguous()
        y = torch.empty_like(x)
        half = x.numel() // 2  # the cheat: only the first half is computed
        _relu_kernel[(triton.cdiv(half, 1024),)](x, y, half, BLOCK=1024)
        return y
