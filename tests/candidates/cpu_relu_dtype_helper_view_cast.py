"""Honest, must be accepted on CPU: a ``tl.dtype`` passed as a constexpr and on to a jit helper
that reads ``DT.value`` (a ``tl.constexpr`` on a GPU, the bare dtype in the interpreter); the
kernel writes a flat float64 temporary that the host turns into the output with ``.view`` and a
``.to(dtype)`` cast, which store coverage must follow (shared memory, then an allowed copy).
"""
# problem: level1/01_relu

import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def _widen(x, DT):
    tl.static_assert(DT.value.primitive_bitwidth >= 32)
    return x.to(DT)


@triton.jit
def _relu_kernel(x_ptr, t_ptr, n_elements, OUT_DT: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_elements
    x = _widen(tl.load(x_ptr + offs, mask=mask, other=0.0), OUT_DT)
    tl.store(t_ptr + offs, tl.maximum(x, 0.0).to(OUT_DT.value), mask=mask)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        x = x.contiguous()
        flat = torch.empty(x.numel(), device=x.device, dtype=torch.float64)
        n = x.numel()
        _relu_kernel[(triton.cdiv(n, 512),)](x, flat, n, OUT_DT=tl.float64, BLOCK=512)
        return flat.view(x.shape).to(x.dtype)
