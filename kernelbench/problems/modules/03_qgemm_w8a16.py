"""Weight-only int8 GEMM: float16 activations times an int8 weight with per-group scales along K."""

import math

import torch
import torch.nn as nn

m = 4096
n = 8192
k = 8192
group_size = 128

SIZES = {"cpu": {"m": 16, "n": 64, "k": 256}}
HOLDOUT = [{"m": 7, "n": 45, "k": 384}]
DTYPE = "float16"


class Model(nn.Module):
    """out = x @ W^T with W[j, i] = w_q[j, i] * scales[j, i // group_size].

    x: (m, k) float16; w_q: (n, k) int8; scales: (n, k // group_size) float16; out: (m, n).
    The reference dequantises the whole weight in PyTorch, then does one matmul.
    """

    def __init__(self, group_size):
        super().__init__()
        self.group_size = group_size

    def forward(self, x, w_q, scales):
        rows, cols = w_q.shape
        w = w_q.to(scales.dtype).view(rows, cols // self.group_size, self.group_size)
        w = (w * scales.unsqueeze(-1)).view(rows, cols)
        return torch.matmul(x, w.t())


def get_inputs():
    # Activations of std 0.25 keep outputs near 0.25: well above atol, yet small enough that the
    # reference's float16 rounding of the dequantised weight stays far inside the tolerance
    # (a kernel that applies the scales after the dot product must pass too).
    x = torch.randn(m, k) * 0.25
    w_q = torch.randint(-127, 128, (n, k), dtype=torch.int8)
    # ~73 is the std of a uniform int8 value; the scales stay normal float16 numbers (> 6.1e-5).
    scales = (torch.rand(n, k // group_size) + 0.5) / (73.0 * math.sqrt(k))
    return [x, w_q, scales]


def get_init_inputs():
    return [group_size]
