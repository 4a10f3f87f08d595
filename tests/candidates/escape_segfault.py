"""Sandbox escape: a segmentation fault (``ctypes.string_at(0)`` reads address 0). Expected:
the worker dies and the verdict says CRASHED; the orchestrator carries on.
"""

import ctypes

import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        ctypes.string_at(0)
        return x
