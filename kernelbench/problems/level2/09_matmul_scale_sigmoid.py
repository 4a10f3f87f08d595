"""Matrix product with a (K, N) weight, a constant scale, then sigmoid."""

import math

import torch
import torch.nn as nn

batch_size = 8192
in_features = 2048
out_features = 8192
scale = 1.5

SIZES = {"cpu": {"batch_size": 40, "in_features": 96, "out_features": 128}}
HOLDOUT = [{"batch_size": 23, "in_features": 57, "out_features": 66, "scale": 0.75}]


class Model(nn.Module):
    """y = sigmoid(scale * (x @ W)); W is stored input-major, shape (in_features, out_features)."""

    def __init__(self, in_features, out_features, scale):
        super().__init__()
        self.scale = scale
        self.weight = nn.Parameter(torch.randn(in_features, out_features) / math.sqrt(in_features))

    def forward(self, x):
        return torch.sigmoid(torch.matmul(x, self.weight) * self.scale)


def get_inputs():
    return [torch.randn(batch_size, in_features)]


def get_init_inputs():
    return [in_features, out_features, scale]
