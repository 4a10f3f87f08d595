"""3x3 convolution with bias, then ReLU, on channels-last (NHWC) float16 activations."""

import torch
import torch.nn as nn

batch_size = 128
in_channels = 256
out_channels = 256
height = 64
width = 64

SIZES = {"cpu": {"batch_size": 2, "in_channels": 16, "out_channels": 32, "height": 16, "width": 16}}
HOLDOUT = [{"batch_size": 1, "in_channels": 5, "out_channels": 7, "height": 9, "width": 13}]
DTYPE = "float16"


class Model(nn.Module):
    """y = relu(conv2d(x, W, b)), stride 1, padding 1. x is logically (N, C, H, W) but laid out
    channels-last in memory; the result keeps that layout."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.conv = self.conv.to(memory_format=torch.channels_last)

    def forward(self, x):
        return torch.relu(self.conv(x))


def get_inputs():
    x = torch.randn(batch_size, in_channels, height, width)
    return [x.contiguous(memory_format=torch.channels_last)]


def get_init_inputs():
    return [in_channels, out_channels]
