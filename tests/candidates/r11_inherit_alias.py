"""Threat row 11 (inherit the reference) through an alias: ``Base = Model`` and
``class ModelNew(Base)``. Even with an honest kernel in forward, inheriting the reference is
rejected (the reference's methods, hooks or parameters could do the work).

Static: INHERITS_REFERENCE. Run time: INHERITS_REFERENCE (a class named Model in the MRO).
"""

import torch
import torch.nn as nn
import triton
import triton.language as tl


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        return x


Base = Model


@triton.jit
def _relu_kernel(x_ptr, y_ptr, n_elements, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_elements
    x = tl.load(x_ptr + offs, mask=mask, other=0.0)
    tl.store(y_ptr + offs, tl.maximum(x, 0.0), mask=mask)


class ModelNew(Base):
    def forward(self, x):
        x = x.contiguous()
        y = torch.empty_like(x)
        n = x.numel()
        _relu_kernel[(triton.cdiv(n, 1024),)](x, y, n, BLOCK=1024)
        return y
