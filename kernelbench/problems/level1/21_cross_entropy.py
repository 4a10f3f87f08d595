"""Per-sample cross-entropy loss of logits against integer class targets."""

import torch
import torch.nn as nn
import torch.nn.functional as F

batch_size = 16384
num_classes = 32000

SIZES = {"cpu": {"batch_size": 16, "num_classes": 1000}}
HOLDOUT = [{"batch_size": 5, "num_classes": 777}, {"batch_size": 3, "num_classes": 5003}]


class Model(nn.Module):
    """F.cross_entropy(logits, targets, reduction="none"): logsumexp(row) - row[target]."""

    def __init__(self):
        super().__init__()

    def forward(self, logits, targets):
        return F.cross_entropy(logits, targets, reduction="none")


def get_inputs():
    logits = torch.randn(batch_size, num_classes)
    targets = torch.randint(0, num_classes, (batch_size,), dtype=torch.int64)
    return [logits, targets]


def get_init_inputs():
    return []
