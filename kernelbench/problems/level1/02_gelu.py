"""Exact (erf-based) GELU over a large 2-D activation tensor."""

import torch
import torch.nn as nn
import torch.nn.functional as F

batch_size = 8192
dim = 32768

SIZES = {"cpu": {"batch_size": 16, "dim": 1000}}
HOLDOUT = [{"batch_size": 5, "dim": 1023}]


class Model(nn.Module):
    """GELU in its exact form: 0.5 * x * (1 + erf(x / sqrt(2)))."""

    def __init__(self):
        super().__init__()

    def forward(self, x):
        return F.gelu(x)


def get_inputs():
    return [torch.randn(batch_size, dim)]


def get_init_inputs():
    return []
