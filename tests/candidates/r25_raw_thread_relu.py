"""Threat row 25, another route: ``torch.relu`` runs on a thread started with the low-level
``_thread.start_new_thread`` and waited for with a ``_thread`` lock, inside forward, beside a
do-nothing Triton launch.

Such a thread never appears in ``threading.enumerate()`` (so a leaked one would not count as a
THREAD_LEAK either), and neither the dispatch-mode op recorder nor the profiler follows it.
Static: FORBIDDEN_IMPORT (``_thread``) and TORCH_COMPUTE; run time: THREAD_STARTED, because the
thread count wraps ``_thread.start_new_thread`` itself.
"""

import _thread

import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def _touch(s_ptr, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    tl.store(s_ptr + offs, tl.zeros((BLOCK,), dtype=tl.float32))


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        scratch = torch.empty(16, device=x.device, dtype=torch.float32)
        _touch[(1,)](scratch, BLOCK=16)
        result = []
        done = _thread.allocate_lock()
        done.acquire()

        def work():
            result.append(torch.relu(x))
            done.release()

        _thread.start_new_thread(work, ())
        done.acquire()  # released by the thread once the relu is in
        return result[0]
