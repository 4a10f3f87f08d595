"""Threat row 30, replayed: a chunked scan that passes each chunk's running total through
global memory (right only in the interpreter's natural program order) and answers every second
call with the previous result, so the reversed-order re-run that follows a trial's call gets a
replay (found by a white-box attacker). The worker runs the extra runs before the trial's own
call for a secret half of the trials, on a model of their own: there the first call on an input
is the reversed one, computed for real, and wrong.
"""

import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def _chunk_scan(x_ptr, y_ptr, carry_ptr, n_rows, n_cols, BLOCK: tl.constexpr, ROWS: tl.constexpr):
    # Program c scans column chunk c of every row and takes its carry from program c-1
    # through global memory: right only when programs run in order (a race on a GPU).
    c = tl.program_id(0)
    rows = tl.arange(0, ROWS)
    cols = c * BLOCK + tl.arange(0, BLOCK)
    m = (rows[:, None] < n_rows) & (cols[None, :] < n_cols)
    ptrs = rows[:, None] * n_cols + cols[None, :]
    v = tl.load(x_ptr + ptrs, mask=m, other=0.0)
    prev = tl.load(carry_ptr + c * ROWS + rows)
    s = tl.cumsum(v, axis=1) + prev[:, None]
    tl.store(y_ptr + ptrs, s, mask=m)
    tl.store(carry_ptr + (c + 1) * ROWS + rows, tl.sum(v, axis=1) + prev)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.calls = 0
        self.last = None

    def forward(self, x):
        self.calls += 1
        if self.calls % 2 == 0 and self.last is not None:
            # The worker's extra run of the trial (reversed program order) on the same values:
            # replay the previous answer.
            return self.last.clone()
        x = x.contiguous()
        n_rows, n_cols = x.shape
        y = torch.empty_like(x)
        BLOCK = 128
        ROWS = triton.next_power_of_2(n_rows)
        n_chunks = triton.cdiv(n_cols, BLOCK)
        carry = torch.zeros((n_chunks + 1) * ROWS, device=x.device, dtype=torch.float32)
        _chunk_scan[(n_chunks,)](x, y, carry, n_rows, n_cols, BLOCK=BLOCK, ROWS=ROWS)
        self.last = y
        return y
