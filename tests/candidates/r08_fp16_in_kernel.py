"""Threat row 8 (precision downgrade): an fp32 problem computed in fp16 inside the kernel.

Loads are rounded to fp16 (half the bandwidth on a real GPU if the cast happened on the host),
ReLU applied, the result widened back to fp32. The relative error (~5e-4) is far beyond the
float32 tolerance (1e-4): WRONG_OUTPUT. The static gate cannot tell, this is the comparison's.
"""

import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def _relu_fp16(x_ptr, y_ptr, n_elements, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_elements
    x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float16)
    y = tl.maximum(x, 0.0)
    tl.store(y_ptr + offs, y.to(tl.float32), mask=mask)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        x = x.contiguous()
        y = torch.empty_like(x)
        n = x.numel()
        _relu_fp16[(triton.cdiv(n, 1024),)](x, y, n, BLOCK=1024)
        return y
