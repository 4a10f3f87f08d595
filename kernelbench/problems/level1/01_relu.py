"""ReLU over a large 2-D activation tensor."""

import torch
import torch.nn as nn

batch_size = 8192
dim = 32768

SIZES = {"cpu": {"batch_size": 16, "dim": 1000}}
HOLDOUT = [{"batch_size": 3, "dim": 777}]


class Model(nn.Module):
    """Clamps every negative entry to zero."""

    def __init__(self):
        super().__init__()

    def forward(self, x):
        return torch.relu(x)


def get_inputs():
    return [torch.randn(batch_size, dim)]


def get_init_inputs():
    return []
