"""Triton tutorial 01 (vector add) style: 1-D grid from a meta lambda, triton.cdiv, BLOCK_SIZE constexpr.

Idioms: `grid = lambda meta: (triton.cdiv(n, meta["BLOCK_SIZE"]),)`, a typed host wrapper function
(`def relu(x: torch.Tensor) -> torch.Tensor`), `torch.empty_like`, `.numel()`, `assert` on devices,
a module-level BLOCK constant, and a jit helper that is called from the kernel.
"""
# problem: level1/01_relu

import torch
import torch.nn as nn
import triton
import triton.language as tl

DEFAULT_BLOCK_SIZE = 1024


@triton.jit
def _relu_value(x):
    zero = tl.zeros_like(x)
    return tl.where(x > zero, x, zero)


@triton.jit
def relu_kernel(
    x_ptr,  # *Pointer* to first input vector.
    output_ptr,  # *Pointer* to output vector.
    n_elements,  # Size of the vector.
    BLOCK_SIZE: tl.constexpr,  # Number of elements each program should process.
):
    # There are multiple 'programs' processing different data. We identify which program
    # we are here:
    pid = tl.program_id(axis=0)
    block_start = pid * BLOCK_SIZE
    offsets = block_start + tl.arange(0, BLOCK_SIZE)
    # Create a mask to guard memory operations against out-of-bounds accesses.
    mask = offsets < n_elements
    x = tl.load(x_ptr + offsets, mask=mask)
    output = _relu_value(x)
    tl.store(output_ptr + offsets, output, mask=mask)


def relu(x: torch.Tensor, block_size: int = DEFAULT_BLOCK_SIZE) -> torch.Tensor:
    # We need to preallocate the output.
    output = torch.empty_like(x)
    assert x.device == output.device, "input and output must live on the same device"
    n_elements = output.numel()
    # The SPMD launch grid denotes the number of kernel instances that run in parallel.
    grid = lambda meta: (triton.cdiv(n_elements, meta["BLOCK_SIZE"]),)  # noqa: E731
    relu_kernel[grid](x, output, n_elements, BLOCK_SIZE=block_size)
    return output


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not x.is_contiguous():
            x = x.contiguous()
        return relu(x)
