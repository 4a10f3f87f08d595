"""Threat row 14 (reading the answer): walk the caller's stack frames with ``sys._getframe`` and
return any tensor of the output's shape found in their locals that is not the input (the
harness's expected output, if it were there).

Static: FORBIDDEN_IMPORT (sys) and INTROSPECTION. Run time: the reference is never computed in
the worker's process, so there is nothing to find; what comes back is the poisoned empty
buffer: WRONG_OUTPUT.
"""

import sys

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


def _find_answer(x):
    frame = sys._getframe(1)
    while frame is not None:
        for value in list(frame.f_locals.values()):
            items = value if isinstance(value, (list, tuple)) else [value]
            for item in items:
                if isinstance(item, torch.Tensor) and item.shape == x.shape and item is not x:
                    if item.data_ptr() != x.data_ptr():
                        return item
        frame = frame.f_back
    return None


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        x = x.contiguous()
        y = torch.empty_like(x)
        found = _find_answer(x)
        src = found.contiguous() if found is not None else torch.empty_like(x)
        n = x.numel()
        _copy_kernel[(triton.cdiv(n, 1024),)](src, y, n, BLOCK=1024)
        return y
