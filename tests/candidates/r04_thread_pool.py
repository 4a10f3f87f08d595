"""Threat row 4 (thread injection): do the real work on a ``concurrent.futures`` worker thread.

The forward waits for the result (so the values are right), but the pool's thread outlives the
call: a place to keep work running outside any timed window. Static: THREADS; run time:
THREAD_LEAK (more Python threads after the call than before).
"""

from concurrent.futures import ThreadPoolExecutor

import torch
import torch.nn as nn
import triton
import triton.language as tl

_POOL = ThreadPoolExecutor(max_workers=2)


@triton.jit
def _relu_kernel(x_ptr, y_ptr, n_elements, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_elements
    x = tl.load(x_ptr + offs, mask=mask, other=0.0)
    tl.store(y_ptr + offs, tl.maximum(x, 0.0), mask=mask)


def _launch(x, y):
    n = x.numel()
    _relu_kernel[(triton.cdiv(n, 1024),)](x, y, n, BLOCK=1024)
    return y


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        x = x.contiguous()
        y = torch.empty_like(x)
        return _POOL.submit(_launch, x, y).result()
