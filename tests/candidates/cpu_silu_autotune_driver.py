"""Honest, must be accepted on CPU: SiLU as ``x * 0.5 * (1 + tanh(x / 2))`` with
``libdevice.tanh``, under a three-config ``triton.autotune`` stacked on ``triton.heuristics``
(EVEN: no mask when the block divides the size), in a persistent grid sized from
``triton.runtime.driver.active``'s SM count, as Triton's tutorials do. Bare interpreter: "0 active
drivers" at the device query and at the autotuner's benchmark.
"""
# problem: level1/03_silu

import torch
import torch.nn as nn
import triton
import triton.language as tl
from triton.language.extra import libdevice
from triton.runtime import driver


def _sm_count() -> int:
    properties = driver.active.utils.get_device_properties(driver.active.get_current_device())
    assert properties["warpSize"] == 32 and properties["max_shared_mem"] > 0
    return properties["multiprocessor_count"]


@triton.autotune(
    configs=[
        triton.Config({"BLOCK": 128}, num_warps=4),
        triton.Config({"BLOCK": 256}, num_warps=4),
        triton.Config({"BLOCK": 512}, num_warps=8),
    ],
    key=["n_elements"],
)
@triton.heuristics({"EVEN": lambda args: args["n_elements"] % args["BLOCK"] == 0})
@triton.jit
def _silu_kernel(x_ptr, y_ptr, n_elements, max_programs, BLOCK: tl.constexpr, EVEN: tl.constexpr):
    n_tiles = tl.cdiv(n_elements, BLOCK)
    for tile in range(tl.program_id(0), n_tiles, tl.num_programs(0)):
        offs = tile * BLOCK + tl.arange(0, BLOCK)
        if EVEN:
            x = tl.load(x_ptr + offs)
        else:
            x = tl.load(x_ptr + offs, mask=offs < n_elements, other=0.0)
        y = x * 0.5 * (1.0 + libdevice.tanh(x * 0.5))
        if EVEN:
            tl.store(y_ptr + offs, y)
        else:
            tl.store(y_ptr + offs, y, mask=offs < n_elements)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        x = x.contiguous()
        y = torch.empty_like(x)
        n = x.numel()
        programs = 4 * _sm_count()

        def grid(meta):
            return (min(programs, triton.cdiv(n, meta["BLOCK"])),)

        _silu_kernel[grid](x, y, n, programs)
        return y
