"""Threat row 25 (work in a thread started and joined inside the call): ``torch.matmul`` runs on
a ``threading.Thread`` that forward starts and joins before it returns, beside a do-nothing
Triton launch that satisfies the launch counter.

Nothing is left running after the call (no THREAD_LEAK), the op recorder is a dispatch mode of
the calling thread, and the profiler follows the calling thread too: before the thread-start
count, the matmul went unseen and the candidate was accepted. Static: THREADS (and
TORCH_COMPUTE); run time: THREAD_STARTED (a thread was created during the call).
"""

import threading

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

    def forward(self, A, B):
        scratch = torch.empty(16, device=A.device, dtype=torch.float32)
        _touch[(1,)](scratch, BLOCK=16)
        result = []
        worker = threading.Thread(target=lambda: result.append(torch.matmul(A, B)))
        worker.start()
        worker.join()
        return result[0]
