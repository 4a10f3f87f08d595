"""Triton tutorial (vector add + matmul's `leaky_relu` helper) style elementwise op with autotune.

Idioms: `@triton.autotune` over four BLOCK_SIZE/num_warps configs with `key=["n_elements"]`; a
runtime Python float (`negative_slope`) passed to the kernel and on to a jit helper
`leaky_relu(x, negative_slope)`; `tl.where(x >= 0, x, x * slope)`; `tl.program_id(axis=0)`;
`torch.empty_like`; the slope kept as a module attribute from the constructor.
"""
# problem: level1/04_leaky_relu

import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def leaky_relu(x, negative_slope):
    return tl.where(x >= 0, x, negative_slope * x)


@triton.autotune(
    configs=[
        triton.Config({"BLOCK_SIZE": 128}, num_warps=4),
        triton.Config({"BLOCK_SIZE": 256}, num_warps=4),
        triton.Config({"BLOCK_SIZE": 512}, num_warps=8),
        triton.Config({"BLOCK_SIZE": 1024}, num_warps=8),
    ],
    key=["n_elements"],
)
@triton.jit
def leaky_relu_kernel(x_ptr, y_ptr, n_elements, negative_slope, BLOCK_SIZE: tl.constexpr):
    pid = tl.program_id(axis=0)
    offsets = pid * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offsets < n_elements
    x = tl.load(x_ptr + offsets, mask=mask)
    tl.store(y_ptr + offsets, leaky_relu(x, negative_slope), mask=mask)


class ModelNew(nn.Module):
    def __init__(self, negative_slope):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        x = x.contiguous()
        y = torch.empty_like(x)
        n_elements = x.numel()
        grid = lambda meta: (triton.cdiv(n_elements, meta["BLOCK_SIZE"]),)  # noqa: E731
        leaky_relu_kernel[grid](x, y, n_elements, self.negative_slope)
        return y
