"""Shared fixtures. Tests run on CPU; tests/gpu/ holds the ones that need CUDA."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from paths import CANDIDATES, REPO

os.environ.setdefault("KERNELLOOP_TIMEOUT", "120")
# Compile for a GPU target as the GPU machines' Triton (3.6) does: with FP fusion. Triton 3.9
# warns that its default changes in 3.10.
os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
# Without a GPU, Triton kernels run in this process only under the interpreter, and the switch
# must be set before triton is first imported (test modules import it at collection time).
try:
    import torch

    if not torch.cuda.is_available():
        os.environ.setdefault("TRITON_INTERPRET", "1")
except ImportError:  # pragma: no cover - torch is a hard dependency
    pass


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


def read_candidate(name: str) -> str:
    return (CANDIDATES / name).read_text()


@pytest.fixture
def fake_gpu_clock(monkeypatch):
    """No GPU here: a perf_counter clock and a no-op flush stand in for CUDA events and the L2
    flush, so a timing path (the one benchmarking routine and what reads it) runs on a CPU.
    Nothing may assert a figure it gives."""
    import time
    import types

    from kernelloop.sandbox import timing

    class Event:
        def __init__(self, enable_timing=True):
            self.t = 0.0

        def record(self):
            self.t = time.perf_counter()

        def synchronize(self):
            pass

    clock = timing.Clock(lambda: None, Event, lambda a, b: (b.t - a.t) * 1e3)
    monkeypatch.setattr(timing.Clock, "capture", classmethod(lambda cls: clock))
    monkeypatch.setattr(timing, "L2Flusher", lambda device: types.SimpleNamespace(flush=dict))
    return clock
