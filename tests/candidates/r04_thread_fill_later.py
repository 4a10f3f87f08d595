"""Threat row 4 (thread injection): return the buffer at once, fill it from a Python thread later.

A timer around the call would see almost nothing. The static gate flags ``threading`` (THREADS);
at run time the thread count after the call is higher than before (THREAD_LEAK), and the output
read right after the call is still the NaN-poisoned allocation (WRONG_OUTPUT).
"""

import threading
import time

import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def _relu_kernel(x_ptr, y_ptr, n_elements, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_elements
    x = tl.load(x_ptr + offs, mask=mask, other=0.0)
    tl.store(y_ptr + offs, tl.maximum(x, 0.0), mask=mask)


def _fill_later(x, y):
    time.sleep(0.5)
    n = x.numel()
    _relu_kernel[(triton.cdiv(n, 1024),)](x, y, n, BLOCK=1024)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        x = x.contiguous()
        y = torch.empty_like(x)
        threading.Thread(target=_fill_later, args=(x, y), daemon=True).start()
        return y
