"""Sandbox escape: a fork bomb (bounded, so a broken limit cannot take the host down). On its
first call the candidate forks children that exec ``sleep 60`` (argv[0] = MARKER) until fork
fails or LIMIT children exist, then raises with the count (every later call raises the same).

Expected: the pids cgroup (512 tasks per worker, where writable) stops it below LIMIT; the
verdict is a RUNTIME_ERROR carrying the count; when evaluate returns no child is left.
"""

import os

import torch
import torch.nn as nn

MARKER = "kernelloop-forkbomb"  # replaced by the test
LIMIT = 600
_result = []


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        if _result:
            raise RuntimeError(_result[0])
        count, error = 0, "none"
        while count < LIMIT:
            try:
                pid = os.fork()
            except OSError as exc:
                error = f"{type(exc).__name__}: {exc}"
                break
            if pid == 0:
                try:
                    os.execv("/bin/sleep", [MARKER, "60"])
                finally:
                    os._exit(0)
            count += 1
        _result.append(f"FORKED {count} children; stopped by: {error}")
        raise RuntimeError(_result[0])
