"""3x3 convolution with bias, then ReLU, on channels-last (NHWC) float16 activations."""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

# GPU size: a ResNet-style 3x3 layer, 256 -> 256 channels at 56x56, batch 128
# (474 GFLOP: 0.48 ms at the H100's fp16 tensor peak; x and y are 205 MB each).
batch_size = 128
in_channels = 256
out_channels = 256
height = 56
width = 56
kernel_size = 3
# The op's configuration (constructor arguments), overridable like the sizes.
stride = 1
padding = 1
dilation = 1
activation = "relu"

SIZES = {"cpu": {"batch_size": 1, "in_channels": 8, "out_channels": 16, "height": 12, "width": 12}}
HOLDOUT = [
    {"batch_size": 2, "in_channels": 5, "out_channels": 7, "height": 9, "width": 13, "stride": 2},
    {"in_channels": 3, "out_channels": 17, "height": 11, "width": 7, "padding": 2, "dilation": 2},
]
DTYPE = "float16"


class Model(nn.Module):
    """y = act(conv2d(x, w) + bias), groups=1, zero padding.

    x: (N, C_in, H, W), laid out channels-last in memory; w: (C_out, C_in, KH, KW);
    bias: (C_out,). stride, padding, dilation: an int or a pair; activation: None, "relu",
    "gelu" or "silu". This is the ``conv2d`` op of ``kernelloop.modules.conv``: a ModelNew
    built with the same constructor arguments serves its calls from the kernel library.
    """

    def __init__(self, stride, padding, dilation, activation):
        super().__init__()
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.activation = activation

    def forward(self, x, w, bias):
        y = F.conv2d(x, w, bias, self.stride, self.padding, self.dilation)
        if self.activation == "relu":
            return F.relu(y)
        if self.activation == "gelu":
            return F.gelu(y)
        if self.activation == "silu":
            return F.silu(y)
        return y


def get_inputs():
    x = torch.randn(batch_size, in_channels, height, width)
    # Filter scaled by 1/sqrt(fan-in): outputs of unit scale at every size, far above the
    # float16 tolerance and far from overflow.
    fan_in = in_channels * kernel_size * kernel_size
    w = torch.randn(out_channels, in_channels, kernel_size, kernel_size) / math.sqrt(fan_in)
    bias = torch.randn(out_channels) * 0.5
    return [x.contiguous(memory_format=torch.channels_last), w, bias]


def get_init_inputs():
    return [stride, padding, dilation, activation]
