"""3x3 convolution, inference-mode batch norm with stored statistics, then ReLU."""

import torch
import torch.nn as nn
import torch.nn.functional as F

batch_size = 32
in_channels = 64
out_channels = 128
height = 128
width = 128

SIZES = {"cpu": {"batch_size": 2, "in_channels": 8, "out_channels": 16, "height": 16, "width": 16}}
HOLDOUT = [{"batch_size": 1, "in_channels": 6, "out_channels": 11, "height": 9, "width": 14}]


class Model(nn.Module):
    """y = relu((conv(x) - mean) / sqrt(var + eps) * gamma + beta), per output channel.

    Batch norm always uses the stored running statistics (inference behaviour, whatever the
    module's train/eval flag), so the function is deterministic. The conv has no bias.
    """

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.eps = 1e-5
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.bn_weight = nn.Parameter(torch.empty(out_channels).uniform_(0.5, 1.5))
        self.bn_bias = nn.Parameter(torch.empty(out_channels).uniform_(-0.5, 0.5))
        self.register_buffer("running_mean", torch.randn(out_channels) * 0.3)
        self.register_buffer("running_var", torch.rand(out_channels) * 0.8 + 0.2)

    def forward(self, x):
        y = F.batch_norm(
            self.conv(x),
            self.running_mean,
            self.running_var,
            self.bn_weight,
            self.bn_bias,
            training=False,
            eps=self.eps,
        )
        return torch.relu(y)


def get_inputs():
    return [torch.randn(batch_size, in_channels, height, width)]


def get_init_inputs():
    return [in_channels, out_channels]
