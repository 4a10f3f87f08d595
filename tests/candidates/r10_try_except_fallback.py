"""Threat row 10 (try/except fallback): try the kernel, fall back to PyTorch when it fails.

Here the kernel launch always fails (it is called with a missing argument), so every call is
really ``torch.relu``. Static: EXCEPTION_FALLBACK (and TORCH_COMPUTE). Run time: the fallback's
``relu`` is recorded (TORCH_OP_CALLED).
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
        y = torch.empty_like(x)
        try:
            _relu_kernel[(triton.cdiv(x.numel(), 1024),)](x, y, BLOCK=1024)  # n_elements missing
        except Exception:
            return torch.relu(x)
        return y
