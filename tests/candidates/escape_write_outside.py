"""Sandbox escape: writes outside the private work dir. At import the candidate tries to create
each file in PATHS (one in the host's /tmp, one next to the repository), ignoring failures, then
behaves as an honest ReLU.

Expected under bwrap: the root is read-only and /tmp is a private tmpfs, so no file appears on the
host. The process backend does not hide the file system: there only the static gate
(FILE_ACCESS for ``open``) protects, so the test runs it with the gate enforced.
"""

from builtins import open  # noqa: UP029 (not among the worker's builtins)
import torch
import torch.nn as nn
import triton
import triton.language as tl

PATHS = []  # replaced by the test

for _path in PATHS:
    try:
        with open(_path, "w") as _fh:
            _fh.write("escaped")
    except OSError:
        pass


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
        x = x.contiguous()
        y = torch.empty_like(x)
        n = x.numel()
        _relu_kernel[(triton.cdiv(n, 1024),)](x, y, n, BLOCK=1024)
        return y
