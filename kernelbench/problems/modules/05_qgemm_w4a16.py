"""Weight-only INT4 GEMM (W4A16): float16 activations times a packed 4-bit weight, asymmetric per-group scales and zero points along K."""

import math

import torch
import torch.nn as nn

# GPU size: decode batch 16 through a Llama-3.1-405B fused gate+up projection (16384 -> 106496).
# The 872 MB packed weight plus 28 MB of scales and zeros: 0.27 ms at the H100's 3.35 TB/s.
m = 16
n = 106496
k = 16384
# The op's configuration (constructor arguments), overridable like the sizes.
group_size = 128
symmetric = False

SIZES = {"cpu": {"m": 4, "n": 96, "k": 512}}
HOLDOUT = [{"m": 3, "n": 45, "k": 384}, {"m": 17, "n": 33, "k": 256}]
DTYPE = "float16"


class Model(nn.Module):
    """out = x @ W^T (+ bias), W[j, i] = (code[j, i] - zero[j, g]) * scales[j, g], g = i // group_size.

    x: (m, k); packed: (n, k // 2) uint8, two codes per byte, even i in the low nibble:
    code[j, 2t] = packed[j, t] & 15, code[j, 2t + 1] = packed[j, t] >> 4; scales:
    (n, k // group_size); zeros (only when not symmetric): like scales, else the fixed zero 8;
    an optional last input is a bias (n,). This is the ``qgemm.w4a16`` op of
    ``kernelloop.modules.qgemm``: inputs ``(x, packed, scales[, zeros][, bias])``.
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
        codes = torch.stack([packed & 15, packed >> 4], dim=-1).view(rows, -1)
        cols = codes.shape[1]
        w = codes.to(scales.dtype).view(rows, cols // self.group_size, self.group_size)
        w -= zeros.unsqueeze(-1) if zeros is not None else 8.0
        w *= scales.unsqueeze(-1)
        out = torch.matmul(x, w.view(rows, cols).t())
        return out + bias if bias is not None else out


def get_inputs():
    x = torch.randn(m, k)
    codes = torch.randint(0, 16, (n, k), dtype=torch.uint8)  # a random INT4 weight's codes
    packed = codes[:, 0::2] | (codes[:, 1::2] << 4)
    # (code - zero) has std ~5: these scales keep the outputs' std near 1.
    scales = (torch.rand(n, k // group_size) + 0.5) / (5.0 * math.sqrt(k))
    zeros = [] if symmetric else [torch.randint(4, 12, (n, k // group_size)).float()]
    return [x, packed, scales, *zeros]


def get_init_inputs():
    return [group_size, symmetric]
