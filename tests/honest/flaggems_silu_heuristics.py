"""FlagGems (ops/silu.py, utils) style pointwise SiLU: heuristics-chosen block, local libentry/tle helpers.

Idioms: `import logging` + `logger.debug("GEMS SILU")`; a local no-op `libentry()` decorator
factory standing in for flag_gems.utils.libentry; `@triton.heuristics({"BLOCK_SIZE": fn,
"num_warps": fn})` with named heuristic functions; a `tle`-style `program_id(axis: int) -> tl.tensor`
jit helper returning int64 and an unused `num_programs` helper left beside it; a module-level
libdevice alias (`from triton.language.extra import libdevice as tl_extra_shim`;
`exp = tl_extra_shim.exp`); `tl.fdiv`; meta-lambda grid; `x.numel()` flattening of a 3-D input.
"""
# problem: level1/03_silu

import logging

import torch
import torch.nn as nn
import triton
import triton.language as tl
from triton.language.extra import libdevice as tl_extra_shim

exp = tl_extra_shim.exp

logger = logging.getLogger(__name__)


def libentry():
    """Stand-in for flag_gems.utils.libentry (a launch-argument cache): returns the kernel as is."""

    def decorator(fn):
        return fn

    return decorator


def simple_elementwise_blocksize_heur(args):
    return 1024


def simple_elementwise_num_warps_heur(args):
    return 4 if args["n_elements"] < 65536 else 8


@triton.jit
def program_id(
    axis: int,
) -> tl.tensor:
    return tl.program_id(axis).to(tl.int64)


@triton.jit
def num_programs(
    axis: int,
) -> tl.tensor:
    return tl.num_programs(axis).to(tl.int64)


@libentry()
@triton.heuristics(
    {
        "BLOCK_SIZE": simple_elementwise_blocksize_heur,
        "num_warps": simple_elementwise_num_warps_heur,
    }
)
@triton.jit
def silu_forward_kernel(
    X,
    Y,
    n_elements,
    BLOCK_SIZE: tl.constexpr,
):
    pid = program_id(0)
    offsets = pid * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offsets < n_elements
    x = tl.load(X + offsets, mask=mask, other=0.0)
    x_fp32 = x.to(tl.float32)
    y = tl.fdiv(x_fp32, (1.0 + exp(-x_fp32)))
    tl.store(Y + offsets, y.to(Y.dtype.element_ty), mask=mask)


def silu(A: torch.Tensor) -> torch.Tensor:
    logger.debug("GEMS SILU FORWARD")
    A = A.contiguous()
    out = torch.empty_like(A)
    n_elements = A.numel()
    grid = lambda meta: (triton.cdiv(n_elements, meta["BLOCK_SIZE"]),)  # noqa: E731
    silu_forward_kernel[grid](A, out, n_elements)
    return out


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        return silu(x)
