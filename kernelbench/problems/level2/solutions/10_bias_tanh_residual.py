"""Known-good Triton solution: per-channel bias + tanh + residual add in one elementwise pass."""

import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def _bias_tanh_residual_kernel(x_ptr, r_ptr, b_ptr, y_ptr, total, C, HW, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < total
    ch = (offs // HW) % C
    x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    r = tl.load(r_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    b = tl.load(b_ptr + ch, mask=mask, other=0.0).to(tl.float32)
    z = x + b
    # tanh(z) = 1 - 2 / (exp(2z) + 1): saturates cleanly to +-1 when exp over/underflows.
    t = 1.0 - 2.0 / (tl.exp(2.0 * z) + 1.0)
    tl.store(y_ptr + offs, (t + r).to(y_ptr.dtype.element_ty), mask=mask)


class ModelNew(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.bias = nn.Parameter(torch.randn(channels) * 0.5)

    def forward(self, x, residual):
        xc = x.contiguous()
        rc = residual.contiguous()
        n, c, h, w = xc.shape
        y = torch.empty((n, c, h, w), device=x.device, dtype=x.dtype)
        total = xc.numel()
        BLOCK = 4096
        _bias_tanh_residual_kernel[(triton.cdiv(total, BLOCK),)](
            xc,
            rc,
            self.bias,
            y,
            total,
            c,
            h * w,
            BLOCK=BLOCK,
            num_warps=8,
        )
        return y
