"""Weight-only INT8 GEMM (W8A16): float16 activations times a uint8-coded weight, symmetric per-group scales along K."""

import math

import torch
import torch.nn as nn

# GPU size: decode batch 16 through a Llama-3.1-405B MLP up-projection (16384 -> 53248). The
# 872 MB weight is the traffic: 0.27 ms at the H100's 3.35 TB/s.
m = 16
n = 53248
k = 16384
# The op's configuration (constructor arguments), overridable like the sizes.
group_size = 128
symmetric = True

SIZES = {"cpu": {"m": 4, "n": 96, "k": 512}}
HOLDOUT = [{"m": 3, "n": 45, "k": 384}, {"m": 17, "n": 33, "k": 256}]
DTYPE = "float16"


class Model(nn.Module):
    """out = x @ W^T (+ bias), W[j, i] = (code[j, i] - zero[j, g]) * scales[j, g], g = i // group_size.

    x: (m, k); packed: (n, k) uint8 holding code[j, i] in [0, 255] (one per byte); scales:
    (n, k // group_size); zeros (only when not symmetric): like scales, else the fixed zero 128;
    an optional last input is a bias (n,). This is the ``qgemm.w8a16`` op of
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
        rows, cols = packed.shape
        w = packed.to(scales.dtype).view(rows, cols // self.group_size, self.group_size)
        w -= zeros.unsqueeze(-1) if zeros is not None else 128.0
        w *= scales.unsqueeze(-1)
        out = torch.matmul(x, w.view(rows, cols).t())
        return out + bias if bias is not None else out


def get_inputs():
    x = torch.randn(m, k)
    packed = torch.randint(0, 256, (n, k), dtype=torch.uint8)  # a random INT8 weight's codes
    # (code - 128) has std ~74: these scales keep the outputs' std near 1.
    scales = (torch.rand(n, k // group_size) + 0.5) / (74.0 * math.sqrt(k))
    zeros = [] if symmetric else [torch.randint(96, 160, (n, k // group_size)).float()]
    return [x, packed, scales, *zeros]


def get_init_inputs():
    return [group_size, symmetric]
