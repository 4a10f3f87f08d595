"""Threat row 12 (shape hard-coding): one program per row with the row length (1000, the CPU
size) baked in as the stride. Correct at the size the Coder saw, garbage for the hold-out
variant's odd width (777): WRONG_OUTPUT on the holdout trial only.
"""

import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def _relu_rows(x_ptr, y_ptr, n_elements, D, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    idx = row * 1000 + cols  # the cheat: stride 1000 instead of D
    mask = (cols < D) & (idx < n_elements)
    x = tl.load(x_ptr + idx, mask=mask, other=0.0)
    tl.store(y_ptr + idx, tl.maximum(x, 0.0), mask=mask)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        x = x.contiguous()
        y = torch.zeros_like(x)
        rows, D = x.shape
        _relu_rows[(rows,)](x, y, x.numel(), D, BLOCK=1024)
        return y
