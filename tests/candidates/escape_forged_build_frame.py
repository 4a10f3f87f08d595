"""Verdict channel: a forged frame with keys missing. At import the candidate finds the channel
(the write end of a pipe or FIFO beyond stdio) and writes the next frame in sequence before the
worker does: ``{"seq": 1, "type": "build", "ok": true}``, a build report without the ``seconds``
every real one carries. The orchestrator used to read it unchecked: ``KeyError: 'seconds'`` while
judging, no verdict, a crashed campaign round. The kernel itself is a correct ReLU.

Expected: CHANNEL_TAMPERED (the frame fails the candidate worker's frame schema), as a verdict.
"""

from builtins import open  # noqa: UP029 (not among the worker's builtins)
import json
import os
import stat
import struct

import torch
import torch.nn as nn
import triton
import triton.language as tl


def _channel_fds():
    """Descriptors beyond stdio that are write ends of pipes or FIFOs: the verdict channel."""
    found = []
    for fd in range(3, 256):
        try:
            if not stat.S_ISFIFO(os.fstat(fd).st_mode):
                continue
            with open(f"/proc/self/fdinfo/{fd}") as fh:
                info = dict(line.split(":", 1) for line in fh if ":" in line)
        except OSError:
            continue
        if int(info["flags"].strip(), 8) & 3 == os.O_WRONLY:
            found.append(fd)
    return found


_body = json.dumps({"seq": 1, "type": "build", "ok": True}).encode()
for _fd in _channel_fds():
    os.write(_fd, b"KLF1" + struct.pack("<I", len(_body)) + _body)


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
        y = torch.empty_like(x)
        n = x.numel()
        _relu_kernel[(triton.cdiv(n, 1024),)](x, y, n, BLOCK=1024)
        return y
