"""Honest, must be accepted on CPU: RMSNorm whose kernel takes ``eps`` as a Python float and
writes ``eps.to(tl.float32)`` (a GPU launch passes it as an fp32 scalar; the bare interpreter
passes a float, which has no ``.to``), with ``libdevice.rsqrt`` (a stub returning None under the
bare interpreter).
"""
# problem: level1/08_rmsnorm

import torch
import torch.nn as nn
import triton
import triton.language as tl
from triton.language.extra import libdevice


@triton.jit
def _rmsnorm_kernel(x_ptr, w_ptr, y_ptr, n_cols, eps, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    x = tl.load(x_ptr + row * n_cols + cols, mask=mask, other=0.0).to(tl.float32)
    w = tl.load(w_ptr + cols, mask=mask, other=0.0)
    mean_sq = tl.sum(x * x, axis=0) / n_cols
    inv_rms = libdevice.rsqrt(mean_sq + eps.to(tl.float32))
    tl.store(y_ptr + row * n_cols + cols, x * inv_rms * w, mask=mask)


class ModelNew(nn.Module):
    def __init__(self, hidden, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(hidden))

    def forward(self, x):
        x2 = x.reshape(-1, x.shape[-1]).contiguous()
        y = torch.empty_like(x2)
        block = triton.next_power_of_2(x2.shape[1])
        _rmsnorm_kernel[(x2.shape[0],)](x2, self.weight, y, x2.shape[1], self.eps, BLOCK=block)
        return y.view(x.shape)
