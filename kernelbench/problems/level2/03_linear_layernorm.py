"""Fully connected layer, then LayerNorm over the output features."""

import torch
import torch.nn as nn

batch_size = 8192
in_features = 4096
out_features = 4096

SIZES = {"cpu": {"batch_size": 64, "in_features": 128, "out_features": 96}}
HOLDOUT = [{"batch_size": 29, "in_features": 70, "out_features": 81}]


class Model(nn.Module):
    """y = layer_norm(x @ W^T + b) with a learned per-feature gain and shift (eps 1e-5)."""

    def __init__(self, in_features, out_features):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.norm = nn.LayerNorm(out_features, eps=1e-5)
        with torch.no_grad():  # non-trivial affine so that ignoring it is caught
            self.norm.weight.uniform_(0.5, 1.5)
            self.norm.bias.uniform_(-0.5, 0.5)

    def forward(self, x):
        return self.norm(self.linear(x))


def get_inputs():
    return [torch.randn(batch_size, in_features)]


def get_init_inputs():
    return [in_features, out_features]
