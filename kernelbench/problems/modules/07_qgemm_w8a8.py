"""INT8 x INT8 GEMM (W8A8) with bias: float16 activations quantised per row at run time, a uint8-coded weight with per-channel scales."""

import math

import torch
import torch.nn as nn

# GPU size: decode batch 16 through a Llama-3.1-405B MLP up-projection (16384 -> 53248). The
# 872 MB weight is the traffic: 0.27 ms at the H100's 3.35 TB/s.
m = 16
n = 53248
k = 16384
# The op's configuration: per-channel weight scales (group_size = k, see get_init_inputs).
symmetric = True

SIZES = {"cpu": {"m": 4, "n": 96, "k": 512}}
HOLDOUT = [{"m": 3, "n": 45, "k": 384}, {"m": 17, "n": 33, "k": 256}]
DTYPE = "float16"


class Model(nn.Module):
    """out = (s_x * xq) @ W^T (+ bias), in x's dtype.

    Activations, per row r: s_x[r] = max(max_i |x[r, i]|, 1e-10) / 127 (fp32),
    xq[r, i] = x[r, i] / s_x[r] rounded half away from zero (fp32), clamped to [-127, 127].
    Weight: W[j, i] = (code[j, i] - zero[j, g]) * scales[j, g], g = i // group_size;
    packed: (n, k) uint8 codes; scales: (n, k // group_size); zeros (only when not symmetric):
    like scales, else the fixed zero 128; an optional last input is a bias (n,). A kernel can
    multiply xq by (code - 128) in int8 with int32 sums per group. This is the ``qgemm.w8a8``
    op of ``kernelloop.modules.qgemm``: inputs ``(x, packed, scales[, zeros][, bias])``.
    """

    def __init__(self, group_size, symmetric):
        super().__init__()
        self.group_size = group_size
        self.symmetric = symmetric

    def forward(self, x, packed, scales, *rest):
        zeros = None if self.symmetric else rest[0]
        bias = rest[-1] if len(rest) > (0 if self.symmetric else 1) else None
        xf = x.float()
        s_x = xf.abs().amax(dim=1, keepdim=True).clamp(min=1e-10) / 127.0
        v = xf / s_x
        xq = torch.trunc(v + torch.where(v >= 0, 0.5, -0.5)).clamp(-127, 127)
        rows, cols = packed.shape
        w = packed.float().view(rows, cols // self.group_size, self.group_size)
        w -= zeros.float().unsqueeze(-1) if zeros is not None else 128.0
        w *= scales.float().unsqueeze(-1)
        out = torch.matmul(xq, w.view(rows, cols).t()) * s_x
        if bias is not None:
            out = out + bias.float()
        return out.to(x.dtype)


def get_inputs():
    x = torch.randn(m, k)
    packed = torch.randint(0, 256, (n, k), dtype=torch.uint8)  # a random INT8 weight's codes
    # (code - 128) has std ~74: these scales keep the outputs' std near 1.
    scales = (torch.rand(n, 1) + 0.5) / (74.0 * math.sqrt(k))
    zeros = [] if symmetric else [torch.randint(96, 160, (n, 1)).float()]
    bias = torch.randn(n)
    return [x, packed, scales, *zeros, bias]


def get_init_inputs():
    return [k, symmetric]  # group_size = k: one scale per output channel
