"""Mean of each row of a wide 2-D tensor."""

import torch
import torch.nn as nn

batch_size = 16384
dim = 32768

SIZES = {"cpu": {"batch_size": 16, "dim": 1000}}
HOLDOUT = [{"batch_size": 5, "dim": 4099}]


class Model(nn.Module):
    """Averages over the last dimension: (batch, dim) -> (batch,)."""

    def __init__(self):
        super().__init__()

    def forward(self, x):
        return torch.mean(x, dim=-1)


def get_inputs():
    return [torch.randn(batch_size, dim)]


def get_init_inputs():
    return []
