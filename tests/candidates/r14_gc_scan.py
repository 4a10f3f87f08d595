"""Threat row 14 (reading the answer): scan every live object with ``gc.get_objects()`` for a
float tensor of the output's shape that is not the input, and copy it out.

Static: FORBIDDEN_IMPORT (gc) and INTROSPECTION. Run time: the worker process never holds a
reference output, so whatever is found (or the empty buffer) is wrong: WRONG_OUTPUT.
"""

import gc

import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def _copy_kernel(src_ptr, dst_ptr, n_elements, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_elements
    tl.store(dst_ptr + offs, tl.load(src_ptr + offs, mask=mask), mask=mask)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        x = x.contiguous()
        y = torch.empty_like(x)
        src = None
        for obj in gc.get_objects():
            if isinstance(obj, torch.Tensor) and obj.shape == x.shape and obj.dtype == x.dtype:
                if obj.data_ptr() not in (x.data_ptr(), y.data_ptr()):
                    src = obj.contiguous()
        if src is None:
            src = torch.empty_like(x)
        n = x.numel()
        _copy_kernel[(triton.cdiv(n, 1024),)](src, y, n, BLOCK=1024)
        return y
