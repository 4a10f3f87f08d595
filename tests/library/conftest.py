"""Fixtures of the library tests: a pinned fake machine, an empty user library, the problem file."""

from __future__ import annotations

import pytest
from library_support import FAKE_ENV, PROBLEM_ID, PROBLEM_SOURCE

from kernelloop import settings
from kernelloop.kernelbench.problem import load_file
from kernelloop.library import dispatcher, fingerprint
from kernelloop.library.store import Library


@pytest.fixture(autouse=True)
def fake_machine(monkeypatch):
    """A pinned fingerprint: arch "cpu" (what dispatch sees for CPU tensors), fake versions."""
    monkeypatch.setattr(fingerprint, "arch", lambda: "cpu")
    monkeypatch.setattr(fingerprint, "environment", lambda: dict(FAKE_ENV))
    dispatcher.clear_cache()
    yield
    dispatcher.clear_cache()


@pytest.fixture
def lib(tmp_path):
    """The default library, pointed at an empty user folder."""
    with settings.override(library_dir=tmp_path / "userlib"):
        yield Library.default()


@pytest.fixture
def problem(tmp_path):
    path = tmp_path / f"{PROBLEM_ID}.py"
    path.write_text(PROBLEM_SOURCE)
    return load_file(path)
