"""Hand-written wrapper style: a flat launch over raveled views, `x.ravel()` in and
`y.reshape_as(x)` out, the way wrappers often flatten any-rank inputs (the profiler names these
aten::ravel and aten::reshape_as, once false rejections).

Idioms: `ravel`, `reshape_as`, `swapaxes` round trip on a view, a 1-D grid.
"""
# problem: level1/01_relu

import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def _relu_flat(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    v = tl.load(x_ptr + offs, mask=mask, other=0.0)
    tl.store(y_ptr + offs, tl.where(v > 0, v, 0.0), mask=mask)


class ModelNew(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.contiguous().ravel()
        out = torch.empty_like(flat)
        n = flat.numel()
        _relu_flat[(triton.cdiv(n, 1024),)](flat, out, n, BLOCK=1024)
        y = out.reshape_as(x)
        return y.swapaxes(0, -1).swapaxes(0, -1) if y.dim() > 1 else y
