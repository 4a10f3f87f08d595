"""Fully connected layer, ReLU, then a learned per-feature output scale."""

import torch
import torch.nn as nn

batch_size = 4096
in_features = 8192
out_features = 4096

SIZES = {"cpu": {"batch_size": 48, "in_features": 160, "out_features": 64}}
HOLDOUT = [{"batch_size": 19, "in_features": 99, "out_features": 41}]


class Model(nn.Module):
    """y = relu(x @ W^T + b) * s, where s is a learned vector over the output features."""

    def __init__(self, in_features, out_features):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.scale = nn.Parameter(torch.empty(out_features).uniform_(0.5, 2.0))

    def forward(self, x):
        return torch.relu(self.linear(x)) * self.scale


def get_inputs():
    return [torch.randn(batch_size, in_features)]


def get_init_inputs():
    return [in_features, out_features]
