"""Shared fixtures. Tests run on CPU; tests/gpu/ holds the ones that need CUDA."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("KERNELLOOP_TIMEOUT", "120")

REPO = Path(__file__).resolve().parents[1]
CANDIDATES = Path(__file__).resolve().parent / "candidates"


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


def read_candidate(name: str) -> str:
    return (CANDIDATES / name).read_text()
