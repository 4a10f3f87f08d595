"""SiLU (swish, x * sigmoid(x)) over a (batch, seq, hidden) activation."""

import torch
import torch.nn as nn
import torch.nn.functional as F

batch_size = 16
seq_len = 4096
hidden = 4096

SIZES = {"cpu": {"batch_size": 2, "seq_len": 8, "hidden": 1000}}
HOLDOUT = [{"batch_size": 3, "seq_len": 7, "hidden": 301}]


class Model(nn.Module):
    """Applies x * sigmoid(x) elementwise."""

    def __init__(self):
        super().__init__()

    def forward(self, x):
        return F.silu(x)


def get_inputs():
    return [torch.randn(batch_size, seq_len, hidden)]


def get_init_inputs():
    return []
