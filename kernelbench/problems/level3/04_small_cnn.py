"""Small image classifier: three conv-ReLU stages with max-pooling, global average, linear head."""

import torch
import torch.nn as nn
import torch.nn.functional as F

batch_size = 256
image_size = 128
c1 = 32
c2 = 64
c3 = 128
num_classes = 10

SIZES = {"cpu": {"batch_size": 2, "image_size": 16, "c1": 8, "c2": 16, "c3": 32}}
HOLDOUT = [{"batch_size": 3, "image_size": 13, "c1": 5, "c2": 7, "c3": 9, "num_classes": 6}]
# The convolutions themselves may stay in PyTorch; pooling, activations and the head may not.
ALLOW_TORCH = ["conv2d"]


class Model(nn.Module):
    """conv(3->c1)-relu-maxpool2, conv(c1->c2)-relu-maxpool2, conv(c2->c3)-relu, mean over H and W,
    then a linear layer to class logits. Convs are 3x3 with padding 1 and a bias; pooling floors
    odd sizes."""

    def __init__(self, c1, c2, c3, num_classes):
        super().__init__()
        self.conv1 = nn.Conv2d(3, c1, 3, padding=1)
        self.conv2 = nn.Conv2d(c1, c2, 3, padding=1)
        self.conv3 = nn.Conv2d(c2, c3, 3, padding=1)
        self.head = nn.Linear(c3, num_classes)

    def forward(self, x):
        x = F.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = F.max_pool2d(torch.relu(self.conv2(x)), 2)
        x = torch.relu(self.conv3(x))
        return self.head(x.mean(dim=(2, 3)))


def get_inputs():
    return [torch.randn(batch_size, 3, image_size, image_size)]


def get_init_inputs():
    return [c1, c2, c3, num_classes]
