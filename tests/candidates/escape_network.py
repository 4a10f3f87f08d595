"""Sandbox escape: network access. At import the candidate connects to a TCP server the test
runs on this machine (loopback and, where there is one, the machine's own address) and sends a
message; if any connection works it carries on as an honest ReLU (and would be accepted).

Expected: the worker's network namespace has no route to the host: every connect fails, the
import raises (IMPORT_FAILED), and the server never sees a connection.
"""

import socket

import torch
import torch.nn as nn
import triton
import triton.language as tl

TARGETS = []  # replaced by the test: [("127.0.0.1", port), ...]

_errors = []
_reached = []
for _host, _port in TARGETS:
    try:
        with socket.create_connection((_host, _port), timeout=3) as _s:
            _s.sendall(b"escaped")
            _reached.append(_host)
    except OSError as exc:
        _errors.append(f"{_host}:{_port}: {exc}")
if not _reached:
    raise RuntimeError("network blocked: " + "; ".join(_errors))


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
