"""Threat row 23: use what the Triton interpreter copies into the module of a kernel it runs.

The module binds ``np`` and ``_interpreter`` and deletes them again, so the gate's "every name
is bound" rule sees them bound. After its first launch the Triton interpreter (unpatched) has
copied its own globals into the module: numpy and the raw-memory ``_interpreter``. The
candidate then reads the input and writes ReLU into the output through raw addresses beside a
copy kernel. The worker's interpreter shim runs kernels in a copy of the module's globals, so
the names stay unbound and the call fails.
"""

# ruff: noqa: F821  (np and _interpreter are what the interpreter would inject)
import torch
import torch.nn as nn
import triton
import triton.language as tl

np = _interpreter = None
del np, _interpreter


@triton.jit
def copy_kernel(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    m = offs < n
    tl.store(y_ptr + offs, tl.load(x_ptr + offs, mask=m), mask=m)


class ModelNew(nn.Module):
    def forward(self, x):
        y = torch.empty_like(x)
        n = x.numel()
        copy_kernel[(triton.cdiv(n, 1024),)](x, y, n, BLOCK=1024)
        idx = np.arange(n, dtype=np.uint64) * np.uint64(4)
        mask = np.ones(n, dtype=bool)
        a = _interpreter.load(
            idx + np.uint64(x.data_ptr()), mask, np.zeros(n, np.float32), np.dtype(np.float32)
        )
        _interpreter.store(idx + np.uint64(y.data_ptr()), a * (a > 0), mask)
        return y
