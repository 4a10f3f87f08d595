"""Threat row 4, on disk, made malformed: after a trial has reported its outputs, overwrite the
file that holds them with bytes that are no bundle at all.

The orchestrator reads each output file once, hashing the bytes it loads; a file that no longer
parses must be named like any other changed file (CHANNEL_TAMPERED), never crash the evaluation.
The static gate flags the file access (FILE_ACCESS).
"""

from builtins import open  # noqa: UP029 (not among the worker's builtins)
import os

import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def _relu_kernel(x_ptr, y_ptr, n_elements, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_elements
    x = tl.load(x_ptr + offs, mask=mask, other=0.0)
    tl.store(y_ptr + offs, tl.maximum(x, 0.0), mask=mask)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        for name in os.listdir("out"):
            with open(os.path.join("out", name), "wb") as fh:
                fh.write(b"\xff" * 12)  # a header length no bundle has
        x = x.contiguous()
        y = torch.empty_like(x)
        n = x.numel()
        _relu_kernel[(triton.cdiv(n, 1024),)](x, y, n, BLOCK=1024)
        return y
