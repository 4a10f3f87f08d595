"""A small CNN of conv-bn-relu blocks, to try `kernelloop capture` on.

    kernelloop capture examples/models/tiny_cnn.py:make_cnn -o captured/tiny_cnn

Six conv-bn-relu blocks are too many heavy ops for one problem, so each block is one unit (in
eval mode batch norm uses its running statistics, a per-channel scale and shift after the
convolution); blocks that compute the same thing at the same sizes share a problem. The pooling
and the classifier are units of their own.
"""

from __future__ import annotations

import torch
import torch.nn as nn


def conv_bn_relu(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
    )


class TinyCNN(nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            conv_bn_relu(3, 16),
            conv_bn_relu(16, 16),
            conv_bn_relu(16, 16),
            conv_bn_relu(16, 32, stride=2),
            conv_bn_relu(32, 32),
            conv_bn_relu(32, 32),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(32, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.features(x)).flatten(1))


def make_cnn() -> nn.Module:
    torch.manual_seed(0)
    model = TinyCNN()
    # Running statistics as after training (a fresh model's are zeros and ones).
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return model


def get_inputs() -> list[torch.Tensor]:
    return [torch.randn(2, 3, 16, 16)]
