"""Filling the disk: at import the candidate writes file after file into its temporary folder
(inside the work dir), each far under the worker's per-file size limit, up to ``TOTAL_MB`` in
all; then it behaves as an honest ReLU. No single file trips ``RLIMIT_FSIZE``, and 1.35 GB
written this way used to go unnoticed: more would fill the host's disk.

Expected: DISK_LIMIT, naming the work dir's cap and how far it grew; the worker is stopped long
before ``TOTAL_MB`` is written.
"""

from builtins import open  # noqa: UP029 (not among the worker's builtins)
import os
import tempfile
import time

import torch
import torch.nn as nn
import triton
import triton.language as tl

TOTAL_MB = 512
_chunk = os.urandom(1 << 20)  # random bytes: no file system compresses them away
_folder = tempfile.mkdtemp()  # under TMPDIR, the work dir's tmp/
for _i in range(TOTAL_MB):
    with open(os.path.join(_folder, f"fill-{_i}.bin"), "wb") as _fh:
        _fh.write(_chunk)
    time.sleep(0.002)  # about 300 MB/s at most: the test's host disk is spared a burst


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
