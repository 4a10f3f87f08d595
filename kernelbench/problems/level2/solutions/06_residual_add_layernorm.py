"""Known-good Triton solution: residual add + LayerNorm in one pass, one program per row."""

import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def _add_layernorm_kernel(
    x_ptr,
    r_ptr,
    g_ptr,
    b_ptr,
    y_ptr,
    N,
    stride_x,
    stride_r,
    stride_y,
    eps,
    BLOCK_N: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK_N)
    mask = cols < N
    x = tl.load(x_ptr + row * stride_x + cols, mask=mask, other=0.0).to(tl.float32)
    r = tl.load(r_ptr + row * stride_r + cols, mask=mask, other=0.0).to(tl.float32)
    h = x + r
    mean = tl.sum(h, axis=0) / N
    d = tl.where(mask, h - mean, 0.0)
    var = tl.sum(d * d, axis=0) / N
    rstd = 1.0 / tl.sqrt(var + eps)
    g = tl.load(g_ptr + cols, mask=mask, other=0.0).to(tl.float32)
    b = tl.load(b_ptr + cols, mask=mask, other=0.0).to(tl.float32)
    y = d * rstd * g + b
    tl.store(y_ptr + row * stride_y + cols, y.to(y_ptr.dtype.element_ty), mask=mask)


class ModelNew(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.norm = nn.LayerNorm(hidden, eps=1e-5)
        with torch.no_grad():
            self.norm.weight.uniform_(0.5, 1.5)
            self.norm.bias.uniform_(-0.5, 0.5)

    def forward(self, x, residual):
        n = x.shape[-1]
        x2 = x.reshape(-1, n).contiguous()
        r2 = residual.reshape(-1, n).contiguous()
        rows = x2.shape[0]
        y = torch.empty((rows, n), device=x.device, dtype=x.dtype)
        block = triton.next_power_of_2(n)
        _add_layernorm_kernel[(rows,)](
            x2,
            r2,
            self.norm.weight,
            self.norm.bias,
            y,
            n,
            x2.stride(0),
            r2.stride(0),
            y.stride(0),
            self.norm.eps,
            BLOCK_N=block,
            num_warps=min(max(block // 512, 1), 16),
        )
        return y.view(x.shape)
