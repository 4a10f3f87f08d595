"""ResNet basic block: conv3x3-BN-ReLU-conv3x3-BN, identity shortcut, ReLU (inference BN)."""

import torch
import torch.nn as nn
import torch.nn.functional as F

batch_size = 32
channels = 128
height = 56
width = 56

SIZES = {"cpu": {"batch_size": 2, "channels": 8, "height": 12, "width": 12}}
HOLDOUT = [{"batch_size": 1, "channels": 5, "height": 9, "width": 7}]


class Model(nn.Module):
    """y = relu(bn2(conv2(relu(bn1(conv1(x))))) + x); convs are 3x3, stride 1, padding 1, no bias.

    Both batch norms always use their stored running statistics (inference behaviour whatever
    the train/eval flag), so the block is a deterministic function of x.
    """

    def __init__(self, channels):
        super().__init__()
        self.eps = 1e-5
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        for i in (1, 2):
            self.register_parameter(
                f"bn{i}_weight", nn.Parameter(torch.empty(channels).uniform_(0.5, 1.5))
            )
            self.register_parameter(
                f"bn{i}_bias", nn.Parameter(torch.empty(channels).uniform_(-0.5, 0.5))
            )
            self.register_buffer(f"bn{i}_mean", torch.randn(channels) * 0.3)
            self.register_buffer(f"bn{i}_var", torch.rand(channels) * 0.8 + 0.2)

    def forward(self, x):
        y = F.batch_norm(
            self.conv1(x),
            self.bn1_mean,
            self.bn1_var,
            self.bn1_weight,
            self.bn1_bias,
            training=False,
            eps=self.eps,
        )
        y = torch.relu(y)
        y = F.batch_norm(
            self.conv2(y),
            self.bn2_mean,
            self.bn2_var,
            self.bn2_weight,
            self.bn2_bias,
            training=False,
            eps=self.eps,
        )
        return torch.relu(y + x)


def get_inputs():
    return [torch.randn(batch_size, channels, height, width)]


def get_init_inputs():
    return [channels]
