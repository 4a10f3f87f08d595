"""Threat row 8 (precision downgrade): cast the input to bfloat16 on the host (a cast is an
allowed host op) so the kernel reads half the bytes, then compute and store in float32.

bf16 keeps 8 mantissa bits: errors ~4e-3 relative, 40x the float32 tolerance: WRONG_OUTPUT.
(The kernel widens to fp32 before ``tl.maximum``: the Triton CPU interpreter mishandles
``tl.maximum`` on bf16 values, which would make the failure an interpreter artefact.)
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
    x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    tl.store(y_ptr + offs, tl.maximum(x, 0.0), mask=mask)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        xh = x.contiguous().to(torch.bfloat16)
        y = torch.empty(xh.shape, dtype=torch.float32, device=xh.device)
        n = xh.numel()
        _relu_kernel[(triton.cdiv(n, 1024),)](xh, y, n, BLOCK=1024)
        return y
