"""RMSNorm with a learned per-channel scale over the hidden dimension."""

import torch
import torch.nn as nn

batch_size = 32
seq_len = 2048
hidden = 4096
eps = 1e-6

SIZES = {"cpu": {"batch_size": 2, "seq_len": 8, "hidden": 1000}}
HOLDOUT = [
    {"batch_size": 3, "seq_len": 5, "hidden": 513},
    {"batch_size": 1, "seq_len": 3, "hidden": 16411},
]


class Model(nn.Module):
    """y = x / sqrt(mean(x^2) + eps) * weight, normalising the last dimension."""

    def __init__(self, hidden, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(1.0 + 0.5 * torch.randn(hidden))

    def forward(self, x):
        inv_rms = torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return x * inv_rms * self.weight


def get_inputs():
    return [torch.randn(batch_size, seq_len, hidden)]


def get_init_inputs():
    return [hidden, eps]
