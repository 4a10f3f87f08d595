"""Threat row 21 (work moved out of the timed window): compute an output in ``__init__`` (on
inputs the candidate makes up itself) and have forward only copy it out.

Forward is a cheap copy kernel that ignores its input's values. Each trial's inputs come from a
secret seed the worker never sees, so the precomputed output is wrong: WRONG_OUTPUT.
"""

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


@triton.jit
def _copy_kernel(src_ptr, dst_ptr, n_elements, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_elements
    tl.store(dst_ptr + offs, tl.load(src_ptr + offs, mask=mask, other=0.0), mask=mask)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        guess = torch.randn(16, 1000)  # the CPU size the Coder saw
        self.pre = torch.empty_like(guess)
        n = guess.numel()
        _relu_kernel[(triton.cdiv(n, 1024),)](guess, self.pre, n, BLOCK=1024)

    def forward(self, x):
        y = torch.empty_like(x)
        n = min(x.numel(), self.pre.numel())
        _copy_kernel[(triton.cdiv(n, 1024),)](self.pre.to(x.device), y, n, BLOCK=1024)
        return y
