"""Sum of a 3-D tensor over its middle dimension, keeping that dimension."""

import torch
import torch.nn as nn

batch_size = 64
reduce_dim = 4096
cols = 2048

SIZES = {"cpu": {"batch_size": 4, "reduce_dim": 64, "cols": 96}}
HOLDOUT = [{"batch_size": 3, "reduce_dim": 37, "cols": 53}]
# A float32 sum of 4096 terms carries an absolute rounding error of ~1e-4 (torch on an H100 vs the
# exact sum, "scaled" inputs) and up to ~6e-4 for a plain sequential loop; sums near zero would fail
# the default atol through no fault of the kernel. Wrong sums are off by O(1).
TOLERANCE = {"atol": 2e-3, "rtol": 1e-4}


class Model(nn.Module):
    """Sums over dim 1: (batch, reduce_dim, cols) -> (batch, 1, cols)."""

    def __init__(self):
        super().__init__()

    def forward(self, x):
        return torch.sum(x, dim=1, keepdim=True)


def get_inputs():
    return [torch.randn(batch_size, reduce_dim, cols)]


def get_init_inputs():
    return []
