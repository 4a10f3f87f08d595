"""Threat row 19 (drift): correct for the first four calls, wrong from the fifth on.

On a GPU the evaluator re-runs trials after the timing loop (hundreds of calls later) and reports
DRIFT. Without a GPU there is no timing loop and no drift trial, so this candidate turns wrong
after exactly four calls: relu has 3 main trials and 1 hold-out, so call 5 is the determinism
repeat of the first trial, which then disagrees with the reference (WRONG_OUTPUT) and with its
first run (NONDETERMINISTIC). The static gate sees an ordinary counter. On a GPU,
tests/gpu/test_timing_gpu.py sets HONEST_CALLS to every trial plus the repeat, so only the drift
trials after the timing loop see the wrong output (DRIFT).
"""

import torch
import torch.nn as nn
import triton
import triton.language as tl

HONEST_CALLS = 4  # replaced by the GPU test
_CALLS = [0]


@triton.jit
def _relu_kernel(x_ptr, y_ptr, n_elements, scale, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_elements
    x = tl.load(x_ptr + offs, mask=mask, other=0.0)
    tl.store(y_ptr + offs, tl.maximum(x, 0.0) * scale, mask=mask)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        _CALLS[0] += 1
        scale = 1.0 if _CALLS[0] <= HONEST_CALLS else 0.5  # the cheat: degrade once "verified"
        x = x.contiguous()
        y = torch.empty_like(x)
        n = x.numel()
        _relu_kernel[(triton.cdiv(n, 1024),)](x, y, n, scale, BLOCK=1024)
        return y
