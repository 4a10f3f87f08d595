"""Inclusive prefix sum along each row of a 2-D tensor."""

import torch
import torch.nn as nn

batch_size = 65536
dim = 4096

SIZES = {"cpu": {"batch_size": 16, "dim": 1000}}
HOLDOUT = [{"batch_size": 5, "dim": 777}, {"batch_size": 3, "dim": 5003}]
# Running sums over 4096 terms reach |s| ~ 250 with "scaled" inputs; torch.cumsum on an H100 is
# itself up to ~6e-4 off the exact prefix sums and a sequential fp32 scan ~1e-3, so partial sums that
# cross zero need an atol above that. Wrong scans (exclusive, bad carry) are off by O(1).
TOLERANCE = {"atol": 3e-3, "rtol": 1e-4}


class Model(nn.Module):
    """torch.cumsum over dim 1."""

    def __init__(self):
        super().__init__()

    def forward(self, x):
        return torch.cumsum(x, dim=1)


def get_inputs():
    return [torch.randn(batch_size, dim)]


def get_init_inputs():
    return []
