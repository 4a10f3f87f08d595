"""Threat row 30 (correct only in the interpreter's fixed program order): an inclusive row scan
split into column chunks, one program per chunk, where each program adds the last prefix sum
that the program before it stored to global memory.

The interpreter runs program j-1 before program j, so the carry is always there and the result
is right; on a GPU the programs run concurrently and program j reads whatever is in memory (here
the NaN of a fresh allocation). Run with each launch's programs reversed, every chunk but the
first reads an unwritten carry: PROGRAM_ORDER_DEPENDENT. Static gate: nothing to see.
"""

import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def _chunk_scan(x_ptr, y_ptr, n_cols, n_chunks, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    row = (pid // n_chunks).to(tl.int64)
    chunk = pid % n_chunks
    cols = chunk * BLOCK + tl.arange(0, BLOCK)
    mask = cols < n_cols
    x = tl.load(x_ptr + row * n_cols + cols, mask=mask, other=0.0)
    # The carry: the previous chunk's last prefix sum, as its program stored it (a race on a GPU).
    prev = row * n_cols + chunk * BLOCK - 1
    carry = tl.load(y_ptr + prev, mask=chunk > 0, other=0.0)
    tl.store(y_ptr + row * n_cols + cols, tl.cumsum(x, axis=0) + carry, mask=mask)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        x = x.contiguous()
        rows, n_cols = x.shape
        y = torch.empty_like(x)
        BLOCK = 256
        n_chunks = triton.cdiv(n_cols, BLOCK)
        _chunk_scan[(rows * n_chunks,)](x, y, n_cols, n_chunks, BLOCK=BLOCK)
        return y
