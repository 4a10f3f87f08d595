"""Maximum values over the last dimension of a 3-D tensor."""

import torch
import torch.nn as nn

batch_size = 128
rows = 1024
dim = 4096

SIZES = {"cpu": {"batch_size": 2, "rows": 8, "dim": 1000}}
HOLDOUT = [{"batch_size": 3, "rows": 5, "dim": 331}, {"batch_size": 2, "rows": 3, "dim": 4133}]


class Model(nn.Module):
    """torch.max over dim 2, returning only the values: (b, r, d) -> (b, r)."""

    def __init__(self):
        super().__init__()

    def forward(self, x):
        return torch.max(x, dim=2).values


def get_inputs():
    return [torch.randn(batch_size, rows, dim)]


def get_init_inputs():
    return []
