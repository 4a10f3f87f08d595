"""``kernelloop library verify``: re-validation when the environment fingerprint changed.

Fixtures (a pinned fake machine, ``lib``, ``problem``) are in conftest.py."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from library_support import (
    ENTRY_SOURCE,
    FAKE_ENV,
    OP,
    PROBLEM_ID,
    make_verdict,
    promoted,
    with_env,
)

from kernelloop.library import explain
from kernelloop.library.manifest import entry_id_for
from kernelloop.library.store import Library, LibraryError
from kernelloop.library.verify import verify


def _fake_evaluate(verdict, calls):
    def evaluate(problem, source, **kwargs):
        calls.append((problem.id, source, kwargs))
        return verdict

    return evaluate


def test_verify_marks_an_entry_stale_when_torch_changed_and_revalidation_fails(lib, problem):
    m = with_env(lib, promoted(lib, problem), torch="2.12.0")
    rejected = make_verdict()
    rejected.reject("wrong_output", "max abs error 3.0")
    calls: list = []
    (result,) = verify(lib, evaluate=_fake_evaluate(rejected, calls))
    assert calls == [(PROBLEM_ID, ENTRY_SOURCE, {"size": "gpu", "backend": "triton"})]
    assert result["changed"] == {"torch": ["2.12.0", "2.13.0"]}
    assert result["stale"] and result["written"] and result["ran"] and not result["accepted"]
    assert "wrong_output" in result["reason"] and "torch 2.12.0 -> 2.13.0" in result["reason"]
    after = lib.get(m.entry_id)
    assert after.stale and after.stale_reason == result["reason"]
    assert "no verified entry" in explain(OP, torch.randn(8, 4096))  # dispatch skips it
    # Again: the same outcome, and the record on disk is the outcome, not "in progress".
    (again,) = verify(lib, evaluate=_fake_evaluate(rejected, calls))
    assert again["reason"] == result["reason"] and not again["written"]
    assert lib.get(m.entry_id).stale_reason == result["reason"]


def test_verify_reports_a_missing_problem(lib, problem):
    m = with_env(lib, promoted(lib, problem), driver="1.0")
    problem.path.unlink()
    (result,) = verify(lib, evaluate=_fake_evaluate(None, []))
    assert not result["ran"] and result["stale"] and "is not bundled" in result["reason"]
    assert "driver 1.0 -> 999.1" in lib.get(m.entry_id).stale_reason


def test_verify_restores_an_entry_that_passes_again(lib, problem):
    m = with_env(lib, promoted(lib, problem), torch="2.12.0")
    calls: list = []
    (result,) = verify(lib, evaluate=_fake_evaluate(make_verdict(candidate_ms=0.8), calls))
    assert result["ran"] and result["accepted"] and not result["stale"] and result["written"]
    after = lib.get(m.entry_id)
    assert not after.stale and after.env == FAKE_ENV
    assert after.timing.median_ms == pytest.approx(0.8)
    assert after.verification.verified_at >= m.verification.verified_at
    # Unchanged now: --changed-only does not re-run it.
    (again,) = verify(lib, evaluate=_fake_evaluate(None, calls), changed_only=True)
    assert len(calls) == 1 and not again["ran"] and not again["stale"] and not again["written"]


def test_verify_cannot_rerun_a_gpu_entry_on_this_machine(lib, problem):
    m = promoted(lib, problem)
    gpu_entry = dataclasses.replace(
        m,
        arch="sm_90",
        entry_id=entry_id_for(OP, ENTRY_SOURCE, "sm_90", m.dtype, m.bucket),
        env={**m.env, "gpu": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0"},
    )
    lib.add(gpu_entry, ENTRY_SOURCE)
    calls: list = []
    results = {
        r["entry_id"]: r for r in verify(lib, evaluate=_fake_evaluate(make_verdict(), calls))
    }
    r = results[gpu_entry.entry_id]
    assert not r["ran"] and r["stale"] and r["written"]
    assert "re-validation needs a sm_90 GPU" in r["reason"]
    assert "gpu NVIDIA H100 80GB HBM3 -> Fake GPU 80GB" in r["reason"]
    assert [c[0] for c in calls] == [PROBLEM_ID]  # only the cpu entry ran


def test_shipped_entries_are_reported_never_written(tmp_path, lib, problem):
    m = promoted(lib, problem)
    shipped = Library(tmp_path / "other-user", lib.user_dir)  # lib's folder, seen as shipped
    with_env(lib, m, torch="2.12.0")
    before = (lib.user_dir / OP / m.entry_id / "manifest.json").read_text()
    (result,) = verify(shipped, evaluate=_fake_evaluate(make_verdict(), []))
    assert result["location"] == "shipped" and not result["written"]
    assert "read-only" in result["note"]
    assert (lib.user_dir / OP / m.entry_id / "manifest.json").read_text() == before
    with pytest.raises(LibraryError, match="shipped with kernelloop"):
        shipped.remove(m.entry_id)
    with pytest.raises(LibraryError, match="read-only"):
        shipped.update(m)
