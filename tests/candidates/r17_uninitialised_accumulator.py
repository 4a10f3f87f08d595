"""Threat row 17 (garbage reads): the kernel starts from a scratch buffer made with
``torch.empty`` and never initialised (on a GPU it often holds zeros by luck).

The worker NaN-fills fresh allocations, so the luck runs out: WRONG_OUTPUT.
"""

import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def _relu_acc(x_ptr, acc_ptr, y_ptr, n_elements, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_elements
    x = tl.load(x_ptr + offs, mask=mask, other=0.0)
    acc = tl.load(acc_ptr + offs, mask=mask, other=0.0)  # garbage: never written
    tl.store(y_ptr + offs, acc + tl.maximum(x, 0.0), mask=mask)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        x = x.contiguous()
        acc = torch.empty_like(x)
        y = torch.empty_like(x)
        n = x.numel()
        _relu_acc[(triton.cdiv(n, 1024),)](x, acc, y, n, BLOCK=1024)
        return y
