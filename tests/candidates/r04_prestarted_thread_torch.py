"""Threat row 4 / 9 (thread injection): a worker thread started at import does torch compute.

The thread exists before the first call, so the per-call thread count does not change; the
forward hands ``torch.relu`` to that thread and waits for it, and launches a do-nothing Triton
kernel so the launch counter is satisfied. Static: THREADS (and TORCH_COMPUTE). At run time the
op recorder (thread-local) cannot see the ``relu``, but the thread is caught: it did not exist
before the candidate was loaded (THREAD_LEAK).
"""

import queue
import threading

import torch
import torch.nn as nn
import triton
import triton.language as tl

_JOBS = queue.Queue()
_DONE = queue.Queue()


def _serve():
    while True:
        x = _JOBS.get()
        _DONE.put(torch.relu(x))


threading.Thread(target=_serve, daemon=True).start()


@triton.jit
def _noop(s_ptr, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    tl.store(s_ptr + offs, tl.zeros((BLOCK,), dtype=tl.float32))


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        scratch = torch.empty(16, device=x.device, dtype=torch.float32)
        _noop[(1,)](scratch, BLOCK=16)
        _JOBS.put(x)
        return _DONE.get()
