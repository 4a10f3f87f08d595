"""Threat row 31 (only the autotuner's CPU pick is correct): ``triton.autotune`` over two configs
where the second (BLOCK=128) silently skips the last element of every block.

The CPU benchmarker keeps the first config, whose output is right, so the call itself passes; a
GPU autotuner that found the second faster would return wrong values. Each config's own run is
judged: AUTOTUNE_CONFIG_WRONG. Static gate: nothing to see.
"""

import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.autotune(
    configs=[
        triton.Config({"BLOCK": 64}, num_warps=4),
        triton.Config({"BLOCK": 128}, num_warps=8),
    ],
    key=["n_elements"],
)
@triton.jit
def _relu_kernel(x_ptr, y_ptr, n_elements, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_elements
    if BLOCK == 128:  # the "fast" config: one element short per block
        mask = mask & (tl.arange(0, BLOCK) < BLOCK - 1)
    x = tl.load(x_ptr + offs, mask=mask, other=0.0)
    tl.store(y_ptr + offs, tl.maximum(x, 0.0), mask=offs < n_elements)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        x = x.contiguous()
        y = torch.empty_like(x)
        n = x.numel()
        _relu_kernel[lambda meta: (triton.cdiv(n, meta["BLOCK"]),)](x, y, n)
        return y
