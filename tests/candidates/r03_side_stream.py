"""Threat row 3 (side-stream work): launch the kernel on a side stream and return at once.

Default-stream timing events would read ~0 while the real work runs on another stream. The static
gate flags every stream API (STREAMS). Without a GPU ``torch.cuda.Stream()`` cannot even be built,
so on CPU only the static verdict is meaningful; tests/gpu/test_timing_gpu.py runs this file on a
GPU with the static gate in report mode and checks the timing is not fooled.
"""

import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def _relu_kernel(x_ptr, y_ptr, n_elements, BLOCK: tl.constexpr):
    pid = tl.program_id(0).to(tl.int64)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_elements
    x = tl.load(x_ptr + offs, mask=mask, other=0.0)
    tl.store(y_ptr + offs, tl.maximum(x, 0.0), mask=mask)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.side = None

    def forward(self, x):
        if self.side is None:
            self.side = torch.cuda.Stream()
        y = torch.empty_like(x)
        n = x.numel()
        with torch.cuda.stream(self.side):  # no wait_stream, no synchronize: the cheat
            _relu_kernel[(triton.cdiv(n, 4096),)](x, y, n, BLOCK=4096, num_warps=8)
        return y
