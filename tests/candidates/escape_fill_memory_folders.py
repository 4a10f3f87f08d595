"""Sandbox escape: fill the memory-backed folders outside the work dir (threat row 29).

At import the candidate writes up to 256 MiB each into /tmp and /dev/shm, in 1 MiB pieces,
stopping at the first error, and prints how much each took; then it behaves as an honest ReLU.
tmpfs pages are neither the worker's resident memory nor its work dir, so neither watchdog
would see them: under bwrap each folder is a tmpfs capped at 64 MiB.
"""

from builtins import open  # noqa: UP029 (not among the worker's builtins)
import torch
import torch.nn as nn
import triton
import triton.language as tl

for _folder in ("/tmp", "/dev/shm"):
    _written = 0
    try:
        with open(f"{_folder}/fill", "wb") as _fh:
            for _ in range(256):
                _fh.write(b"\0" * (1 << 20))
                _fh.flush()
                _written += 1 << 20
    except OSError:
        pass
    print(f"FILLED {_folder} {_written}", file=__import__("sys").stderr)


@triton.jit
def _relu_kernel(x_ptr, y_ptr, n_elements, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_elements
    x = tl.load(x_ptr + offs, mask=mask, other=0.0)
    tl.store(y_ptr + offs, tl.maximum(x, 0.0), mask=mask)


class ModelNew(nn.Module):
    def forward(self, x):
        y = torch.empty_like(x)
        n = x.numel()
        _relu_kernel[(triton.cdiv(n, 1024),)](x, y, n, BLOCK=1024)
        return y
