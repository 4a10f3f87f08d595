"""Threat row 6 (patching timers/sync): replace ``time.perf_counter`` and
``torch.cuda.synchronize`` at import, so any host timer reads zero and "synchronise" is free.

The kernel itself is honest. Static: TIMER_PATCH (and FORBIDDEN_IMPORT for ``time``). Run time:
the worker snapshots the identities of these functions before loading the candidate and
re-checks them after every call: FUNCTION_PATCHED.
"""

import time

import torch
import torch.nn as nn
import triton
import triton.language as tl

time.perf_counter = lambda: 0.0
torch.cuda.synchronize = lambda *args, **kwargs: None


@triton.jit
def _relu_kernel(x_ptr, y_ptr, n_elements, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_elements
    x = tl.load(x_ptr + offs, mask=mask, other=0.0)
    tl.store(y_ptr + offs, tl.maximum(x, 0.0), mask=mask)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        x = x.contiguous()
        y = torch.empty_like(x)
        n = x.numel()
        _relu_kernel[(triton.cdiv(n, 1024),)](x, y, n, BLOCK=1024)
        return y
