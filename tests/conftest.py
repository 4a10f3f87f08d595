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
