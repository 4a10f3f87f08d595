"""2-D max pooling (3x3 window, stride 2, padding 1) over an NCHW feature map."""

import torch
import torch.nn as nn

batch_size = 24
channels = 64
height = 512
width = 512
kernel_size = 3
stride = 2
padding = 1

SIZES = {"cpu": {"batch_size": 2, "channels": 4, "height": 32, "width": 32}}
HOLDOUT = [{"batch_size": 1, "channels": 3, "height": 17, "width": 23}]


class Model(nn.Module):
    """nn.MaxPool2d(kernel_size, stride, padding)."""

    def __init__(self, kernel_size, stride, padding):
        super().__init__()
        self.pool = nn.MaxPool2d(kernel_size=kernel_size, stride=stride, padding=padding)

    def forward(self, x):
        return self.pool(x)


def get_inputs():
    return [torch.randn(batch_size, channels, height, width)]


def get_init_inputs():
    return [kernel_size, stride, padding]
