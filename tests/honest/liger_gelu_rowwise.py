"""Liger-Kernel (ops/geglu.py) style exact GELU: one program per row, libdevice `erf` with fallback.

Idioms: module-level `try: from triton.language.extra.libdevice import erf` / `except
ModuleNotFoundError: from triton.language.extra.cuda.libdevice import erf`; pointer bumping
`a += program_id * stride`; `n_cols: tl.constexpr`; a module-level float constant used inside the
kernel as `tl.constexpr`; `.cast(...)` back to the input dtype; `calculate_settings`;
`ori_shape = a.shape` / `a.view(-1, n_cols)` / `.view(*ori_shape)`; a host function with type hints.
"""
# problem: level1/02_gelu

import torch
import torch.nn as nn
import triton
import triton.language as tl

try:
    # typical import path with dispatch available
    from triton.language.extra.libdevice import erf
except ModuleNotFoundError:
    # for working with NGC containers
    from triton.language.extra.cuda.libdevice import erf

INV_SQRT2: tl.constexpr = tl.constexpr(0.7071067811865476)  # 1 / sqrt(2)


def calculate_settings(n: int) -> tuple[int, int]:
    MAX_FUSED_SIZE = 65536
    BLOCK_SIZE = triton.next_power_of_2(n)
    if BLOCK_SIZE > MAX_FUSED_SIZE:
        raise RuntimeError(f"n = {n} exceeds the recommended Triton blocksize = {MAX_FUSED_SIZE}.")
    num_warps = 4
    if BLOCK_SIZE >= 32768:
        num_warps = 32
    elif BLOCK_SIZE >= 8192:
        num_warps = 16
    elif BLOCK_SIZE >= 2048:
        num_warps = 8
    return BLOCK_SIZE, num_warps


@triton.jit
def _gelu_forward_kernel(a, c, stride, n_cols: tl.constexpr, BLOCK_SIZE: tl.constexpr):
    program_id = tl.program_id(0).to(tl.int64)

    # locate start index
    a += program_id * stride
    c += program_id * stride

    col_offsets = tl.arange(0, BLOCK_SIZE)
    mask = col_offsets < n_cols
    a_row = tl.load(a + col_offsets, mask=mask, other=0)
    a_f32 = a_row.to(tl.float32)

    # exact form: 0.5 * a * (1 + erf(a / sqrt(2)))
    gelu_a = 0.5 * a_f32 * (1 + erf(a_f32 * INV_SQRT2))
    tl.store(c + col_offsets, gelu_a.cast(a_row.dtype), mask=mask)


def gelu_forward(a: torch.Tensor) -> torch.Tensor:
    ori_shape = a.shape
    n_cols = ori_shape[-1]
    a = a.view(-1, n_cols)
    c = torch.empty_like(a)
    n_rows = a.shape[0]
    BLOCK_SIZE, num_warps = calculate_settings(n_cols)
    _gelu_forward_kernel[(n_rows,)](
        a,
        c,
        c.stride(-2),
        n_cols=n_cols,
        BLOCK_SIZE=BLOCK_SIZE,
        num_warps=num_warps,
    )
    return c.view(*ori_shape)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        return gelu_forward(x.contiguous())
