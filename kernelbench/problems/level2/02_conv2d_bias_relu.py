"""3x3 same-padded convolution with bias, then ReLU (NCHW, float32)."""

import torch
import torch.nn as nn

batch_size = 32
in_channels = 128
out_channels = 128
height = 128
width = 128
kernel_size = 3

SIZES = {"cpu": {"batch_size": 2, "in_channels": 8, "out_channels": 16, "height": 16, "width": 16}}
HOLDOUT = [{"batch_size": 1, "in_channels": 5, "out_channels": 7, "height": 13, "width": 11}]


class Model(nn.Module):
    """y = relu(conv2d(x, W, b)), stride 1, zero padding that keeps the spatial size."""

    def __init__(self, in_channels, out_channels, kernel_size):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)

    def forward(self, x):
        return torch.relu(self.conv(x))


def get_inputs():
    return [torch.randn(batch_size, in_channels, height, width)]


def get_init_inputs():
    return [in_channels, out_channels, kernel_size]
