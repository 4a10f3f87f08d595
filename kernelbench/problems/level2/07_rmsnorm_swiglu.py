"""RMSNorm, then a SwiGLU gate: silu(h @ W_gate^T) * (h @ W_up^T)."""

import torch
import torch.nn as nn
import torch.nn.functional as F

num_tokens = 8192
dim = 2048
hidden = 4096

SIZES = {"cpu": {"num_tokens": 32, "dim": 64, "hidden": 96}}
HOLDOUT = [{"num_tokens": 13, "dim": 50, "hidden": 70}]


class Model(nn.Module):
    """h = x / sqrt(mean(x^2) + eps) * g;  y = silu(h @ W_gate^T) * (h @ W_up^T). No biases."""

    def __init__(self, dim, hidden):
        super().__init__()
        self.eps = 1e-6
        self.norm_weight = nn.Parameter(torch.empty(dim).uniform_(0.5, 1.5))
        self.w_gate = nn.Linear(dim, hidden, bias=False)
        self.w_up = nn.Linear(dim, hidden, bias=False)

    def forward(self, x):
        h = x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps) * self.norm_weight
        return F.silu(self.w_gate(h)) * self.w_up(h)


def get_inputs():
    return [torch.randn(num_tokens, dim)]


def get_init_inputs():
    return [dim, hidden]
