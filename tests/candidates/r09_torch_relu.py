"""Threat row 9 (no kernel at all): forward is ``torch.relu(x)``.

Static: NO_KERNEL (no @triton.jit anywhere) and TORCH_COMPUTE. Run time: the op recorder sees
``relu`` (TORCH_OP_CALLED) and the launch counter stays at zero (NO_KERNEL_LAUNCHED).
"""

import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        return torch.relu(x)
