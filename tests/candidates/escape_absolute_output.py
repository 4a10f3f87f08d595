"""Verdict channel: an output path outside the work dir. On its first call the candidate finds
the channel (the write end of a pipe or FIFO beyond stdio) and reports the first trial itself,
in sequence and with every key a real trial frame has, but with ``"output": "/etc/passwd"``. The
orchestrator joins the path to the work dir, and ``Path(work) / "/etc/passwd"`` is
``/etc/passwd``: it would read a host file as the candidate's output. The kernel is a correct
ReLU.

Expected: CHANNEL_TAMPERED (an output must be ``out/<name>.bin``), and no file outside the work
dir's ``out/`` is ever opened as an output.
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

OUTPUT = "/etc/passwd"
_forged = []


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


def _forge():
    # The first trial's name, from the input bundles the reference wrote (main-<dist>-1.bin).
    name = sorted(n for n in os.listdir("inputs") if n.startswith("main-"))[0][: -len(".bin")]
    frame = dict(seq=2, type="trial", name=name, ok=True, spans={}, output=OUTPUT)
    frame.update(output_sha256="0" * 64, inputs_sha256="0" * 64, devices=["cpu"], launches=1)
    frame.update(threads_delta=0, torch_ops=[], patched=[])
    body = json.dumps(frame).encode()
    for fd in _channel_fds():
        os.write(fd, b"KLF1" + struct.pack("<I", len(body)) + body)


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
        if not _forged:
            _forged.append(True)
            _forge()
        y = torch.empty_like(x)
        n = x.numel()
        _relu_kernel[(triton.cdiv(n, 1024),)](x, y, n, BLOCK=1024)
        return y
