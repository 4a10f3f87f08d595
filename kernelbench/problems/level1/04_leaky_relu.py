"""Leaky ReLU with a configurable negative slope."""

import torch
import torch.nn as nn
import torch.nn.functional as F

batch_size = 4096
dim = 65536
negative_slope = 0.2

SIZES = {"cpu": {"batch_size": 16, "dim": 1000}}
HOLDOUT = [{"batch_size": 7, "dim": 333}]


class Model(nn.Module):
    """Keeps positive entries and multiplies negative ones by `negative_slope`."""

    def __init__(self, negative_slope):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        return F.leaky_relu(x, negative_slope=self.negative_slope)


def get_inputs():
    return [torch.randn(batch_size, dim)]


def get_init_inputs():
    return [negative_slope]
