"""LayerNorm with learned weight and bias over the hidden dimension."""

import torch
import torch.nn as nn

batch_size = 32
seq_len = 2048
hidden = 4096

SIZES = {"cpu": {"batch_size": 2, "seq_len": 8, "hidden": 1000}}
HOLDOUT = [
    {"batch_size": 3, "seq_len": 5, "hidden": 777},
    {"batch_size": 1, "seq_len": 3, "hidden": 16411},
]


class Model(nn.Module):
    """nn.LayerNorm(hidden) whose affine parameters start away from (1, 0)."""

    def __init__(self, hidden):
        super().__init__()
        self.norm = nn.LayerNorm(hidden, eps=1e-5)
        with torch.no_grad():
            self.norm.weight.normal_(1.0, 0.5)
            self.norm.bias.normal_(0.0, 0.5)

    def forward(self, x):
        return self.norm(x)


def get_inputs():
    return [torch.randn(batch_size, seq_len, hidden)]


def get_init_inputs():
    return [hidden]
