"""Sandbox escape: processes that outlive the worker. On its first call the candidate starts
``sleep 1000`` in a new session (escaping a process-group kill) and a second one through a
double fork with ``setsid`` (re-parented away from the worker), both with MARKER as argv[0]
so the test can find them in /proc; then it behaves as an honest ReLU.

Expected: when ``evaluate`` returns, no process carrying MARKER exists.
"""

import os
import subprocess

import torch
import torch.nn as nn
import triton
import triton.language as tl

MARKER = "kernelloop-leftover"  # replaced by the test
_started = []


def _escape():
    first = subprocess.Popen(
        [MARKER, "1000"],
        executable="/bin/sleep",
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    print(f"spawned {first.pid}", flush=True)
    pid = os.fork()
    if pid == 0:
        os.setsid()
        if os.fork() == 0:
            os.execv("/bin/sleep", [MARKER + "-double-fork", "1000"])
        os._exit(0)
    os.waitpid(pid, 0)


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
        if not _started:
            _started.append(True)
            _escape()
        x = x.contiguous()
        y = torch.empty_like(x)
        n = x.numel()
        _relu_kernel[(triton.cdiv(n, 1024),)](x, y, n, BLOCK=1024)
        return y
