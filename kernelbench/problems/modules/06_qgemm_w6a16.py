"""Weight-only INT6 GEMM (W6A16) with bias: float16 activations times a weight packed four 6-bit codes per three bytes, symmetric per-group scales."""

import math

import torch
import torch.nn as nn

# GPU size: decode batch 16 through a Llama-3.1-405B fused gate+up projection (16384 -> 106496).
# The 1.31 GB packed weight is the traffic: 0.40 ms at the H100's 3.35 TB/s.
m = 16
n = 106496
k = 16384
# The op's configuration (constructor arguments), overridable like the sizes.
group_size = 128
symmetric = True

SIZES = {"cpu": {"m": 4, "n": 96, "k": 512}}
HOLDOUT = [{"m": 3, "n": 45, "k": 384}, {"m": 17, "n": 33, "k": 256}]
DTYPE = "float16"


class Model(nn.Module):
    """out = x @ W^T (+ bias), W[j, i] = (code[j, i] - zero[j, g]) * scales[j, g], g = i // group_size.

    x: (m, k); packed: (n, 3 * k // 4) uint8: bytes 3t, 3t + 1, 3t + 2 of a row are the
    little-endian 24-bit word code[4t] | code[4t + 1] << 6 | code[4t + 2] << 12 |
    code[4t + 3] << 18; scales: (n, k // group_size); zeros (only when not symmetric): like
    scales, else the fixed zero 32; an optional last input is a bias (n,). This is the
    ``qgemm.w6a16`` op of ``kernelloop.modules.qgemm``: inputs ``(x, packed, scales[, zeros][, bias])``.
    The reference dequantises the whole weight in the activations' dtype, then does one matmul.
    """

    def __init__(self, group_size, symmetric):
        super().__init__()
        self.group_size = group_size
        self.symmetric = symmetric

    def forward(self, x, packed, scales, *rest):
        zeros = None if self.symmetric else rest[0]
        bias = rest[-1] if len(rest) > (0 if self.symmetric else 1) else None
        rows = packed.shape[0]
        b = [packed[:, i::3].to(torch.int32) for i in range(3)]
        word = b[0] | (b[1] << 8) | (b[2] << 16)
        codes = [((word >> s) & 63).to(torch.uint8) for s in (0, 6, 12, 18)]
        codes = torch.stack(codes, dim=-1).view(rows, -1)
        cols = codes.shape[1]
        w = codes.to(scales.dtype).view(rows, cols // self.group_size, self.group_size)
        w -= zeros.unsqueeze(-1) if zeros is not None else 32.0
        w *= scales.unsqueeze(-1)
        out = torch.matmul(x, w.view(rows, cols).t())
        return out + bias if bias is not None else out


def get_inputs():
    x = torch.randn(m, k)
    codes = torch.randint(0, 64, (n, k // 4, 4), dtype=torch.uint8)  # a random INT6 weight's codes
    c = [codes[..., i].to(torch.int32) for i in range(4)]
    word = c[0] | (c[1] << 6) | (c[2] << 12) | (c[3] << 18)
    packed = [((word >> s) & 255).to(torch.uint8) for s in (0, 8, 16)]
    packed = torch.stack(packed, dim=-1).view(n, -1)
    # (code - 32) has std ~18.5: these scales keep the outputs' std near 1.
    scales = (torch.rand(n, k // group_size) + 0.5) / (18.5 * math.sqrt(k))
    zeros = [] if symmetric else [torch.randint(24, 40, (n, k // group_size)).float()]
    bias = torch.randn(n)
    return [x, packed, scales, *zeros, bias]


def get_init_inputs():
    return [group_size, symmetric]
