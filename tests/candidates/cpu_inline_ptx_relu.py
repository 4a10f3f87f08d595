"""Inconclusive on CPU: ReLU through inline PTX (``tl.inline_asm_elementwise``), which the Triton
interpreter cannot run. The verdict must be INTERPRETER_UNSUPPORTED ("not verified on CPU"), not
a runtime error held against the candidate, and not an acceptance.
"""
# problem: level1/01_relu

import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def _relu_ptx(x_ptr, y_ptr, n_elements, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_elements
    x = tl.load(x_ptr + offs, mask=mask, other=0.0)
    y = tl.inline_asm_elementwise(
        "max.f32 $0, $1, 0f00000000;", "=r,r", [x], dtype=tl.float32, is_pure=True, pack=1
    )
    tl.store(y_ptr + offs, y, mask=mask)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        x = x.contiguous()
        y = torch.empty_like(x)
        n = x.numel()
        _relu_ptx[(triton.cdiv(n, 1024),)](x, y, n, BLOCK=1024)
        return y
