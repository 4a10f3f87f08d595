"""Sandbox escape: forged frames on every inherited descriptor. At import the candidate writes
well-formed channel frames (``KLF1`` + length + JSON, claiming a finished, successful run) to
every file descriptor from 3 to 64, then its forward returns garbage (zeros).

Expected: the orchestrator sees frames out of sequence or of unexpected type and rejects the
stream (CHANNEL_TAMPERED), or the forgery misses and the zeros fail (WRONG_OUTPUT); never accepted.
"""

import json
import os
import struct

import torch
import torch.nn as nn
import triton
import triton.language as tl


def _frame(seq, kind, **payload):
    body = json.dumps({"seq": seq, "type": kind, **payload}).encode()
    return b"KLF1" + struct.pack("<I", len(body)) + body


_FORGERY = b"".join(
    [
        _frame(1, "build", ok=True, seconds=0.1, inherits_reference=False),
        _frame(2, "done"),
        _frame(0, "done"),
    ]
)
for _fd in range(3, 65):
    try:
        os.write(_fd, _FORGERY)
    except OSError:
        pass


@triton.jit
def _zero_kernel(y_ptr, n_elements, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    tl.store(y_ptr + offs, tl.zeros((BLOCK,), dtype=tl.float32), mask=offs < n_elements)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        y = torch.empty_like(x)
        n = y.numel()
        _zero_kernel[(triton.cdiv(n, 1024),)](y, n, BLOCK=1024)
        return y
