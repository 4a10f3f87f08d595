"""The verified-kernel library on CPU: promotion rules, the store, dispatch, the CLI.

A tiny op (``test_library.scale``: x * 2) and a problem file in tmp_path stand in for the
efficiency modules; verdicts with timings are built by hand from the real statistics helpers, so
the promotion bar (the speedup's lower bound) is exercised with real intervals. The environment
fingerprint is pinned to a fake one, so the tests mean the same on a GPU machine.
"""

from __future__ import annotations

import dataclasses
import io
import json
import tarfile

import pytest
import torch
from library_support import (
    ENTRY_SOURCE,
    FAKE_ENV,
    FAKE_GPU,
    OP,
    PROBLEM_ID,
    entry_module,
    make_verdict,
    promoted,
    with_env,
)
from typer.testing import CliRunner

from kernelloop import settings
from kernelloop.cli import app
from kernelloop.library import dispatch, dispatcher, explain, fingerprint
from kernelloop.library.manifest import Manifest, ManifestError, entry_id_for
from kernelloop.library.promote import NotPromotable, promote, promote_from_run
from kernelloop.library.store import EntryNotFound, Library, LibraryError
from kernelloop.runs.store import RunStore


# --- manifest and fingerprint ---------------------------------------------------------------------
def test_manifest_round_trips_and_refuses_newer_schemas(lib, problem):
    m = promoted(lib, problem)
    again = Manifest.from_json(m.to_json())
    assert again == m and again.to_dict() == json.loads(m.to_json())
    with pytest.raises(ManifestError, match="upgrade kernelloop"):
        Manifest.from_dict({**m.to_dict(), "schema_version": 99})
    with pytest.raises(ManifestError, match="speedup_eager"):
        Manifest.from_dict({**m.to_dict(), "speedup_eager": [1.0, 2.0]})


def test_fingerprint_is_cheap_and_complete(monkeypatch):
    monkeypatch.undo()  # the real functions, not the autouse fakes
    env = fingerprint.environment()
    assert set(fingerprint.COMPARED) <= set(env) and env["torch"] == str(torch.__version__)
    here = fingerprint.arch()
    assert here.startswith("sm_") if torch.cuda.is_available() else here == "cpu"
    diff = fingerprint.changes({**env, "torch": "1.0"}, env)
    assert diff == {"torch": ("1.0", env["torch"])}
    assert fingerprint.describe_changes(diff) == f"torch 1.0 -> {env['torch']}"


# --- promotion ------------------------------------------------------------------------------------
def test_promotion_adds_an_entry_with_its_measurements(lib, problem):
    m = promoted(lib, problem)
    assert (m.op, m.arch, m.dtype, m.bucket, m.location) == (OP, "cpu", "float32", "n4096", "user")
    assert m.entry_id == entry_id_for(OP, ENTRY_SOURCE, "cpu", "float32", "n4096")
    assert m.source_path.read_text() == ENTRY_SOURCE
    assert m.source_path.parent == lib.user_dir / OP / m.entry_id
    point, low, high = m.speedup_eager
    assert low < point < high and low > 1.9  # 2.0 ms eager over 1.0 ms
    assert m.speedup_compile[1] > 1.0
    assert m.timing.median_ms == pytest.approx(1.0) and m.timing.eager_ms == pytest.approx(2.0)
    assert m.provenance.run_id == "run-1" and m.provenance.problem_id == PROBLEM_ID
    assert m.provenance.size == "gpu" and m.env == FAKE_ENV and not m.stale
    assert "2.00x vs eager" in m.describe() and FAKE_GPU in m.describe()
    assert [e.entry_id for e in lib.entries(OP)] == [m.entry_id]
    assert lib.get(m.entry_id) == m


def test_promotion_bucket_follows_the_verdicts_size(lib, problem):
    assert promoted(lib, problem, size="cpu").bucket == "n128"  # n = 100 -> bucket 128


@pytest.mark.parametrize(
    ("verdict", "reason"),
    [
        pytest.param("rejected", r"rejected the kernel \(wrong_output\)", id="rejected"),
        pytest.param(dict(timed=False), "needs a GPU timing", id="cpu-verdict"),
        pytest.param(dict(compile_ms=0.99), "faster than PyTorch torch.compile", id="vs-compile"),
        pytest.param(dict(eager_ms=1.0, compile_ms=None), "PyTorch eager", id="vs-eager"),
    ],
)
def test_promotion_refuses(lib, problem, verdict, reason):
    if verdict == "rejected":
        v = make_verdict()
        v.reject("wrong_output", "max abs error 3.0")
    else:
        v = make_verdict(**verdict)
    with pytest.raises(NotPromotable, match=reason):
        promote(v, ENTRY_SOURCE, problem, provenance={}, library=lib)
    assert lib.entries() == []


def test_promote_from_run_takes_the_best_timed_candidate(tmp_path, lib, problem):
    store = RunStore.create(tmp_path / "runs", {"problems": [PROBLEM_ID]}, run_id="run-7")
    slow_source = "slow = 1\n" + ENTRY_SOURCE
    slow = store.add_candidate(PROBLEM_ID, 0, 0, slow_source, parent_id=None, mode="initial")
    fast = store.add_candidate(PROBLEM_ID, 0, 1, ENTRY_SOURCE, parent_id=None, mode="initial")
    store.record_verdict(slow, make_verdict(candidate_ms=1.5))
    store.record_verdict(fast, make_verdict(candidate_ms=1.0))
    m = promote_from_run(store, PROBLEM_ID, problem=problem, library=lib)
    assert isinstance(m, Manifest)
    assert (m.provenance.run_id, m.provenance.candidate_id) == ("run-7", fast)
    assert m.source_path.read_text() == ENTRY_SOURCE

    cpu_run = RunStore.create(tmp_path / "runs", {}, run_id="run-cpu")
    cid = cpu_run.add_candidate(PROBLEM_ID, 0, 0, ENTRY_SOURCE, parent_id=None, mode="initial")
    cpu_run.record_verdict(cid, make_verdict(timed=False))
    with pytest.raises(NotPromotable, match="needs a GPU timing"):
        promote_from_run(cpu_run, PROBLEM_ID, problem=problem, library=lib)
    empty = RunStore.create(tmp_path / "runs", {}, run_id="run-empty")
    with pytest.raises(NotPromotable, match="no accepted candidate"):
        promote_from_run(empty, PROBLEM_ID, library=lib)


# --- dispatch -------------------------------------------------------------------------------------
def test_dispatch_runs_the_promoted_entry_and_says_so(lib, problem, capsys):
    x = torch.randn(8, 4096)
    assert "no verified entry" in explain(OP, x)  # decided, and the decision cached...
    m = promoted(lib, problem)
    assert m.entry_id in explain(OP, x)  # ...until this process wrote an entry
    with settings.override(dispatch_log=True):
        out = dispatch(OP, x)
    torch.testing.assert_close(out, x * 2)
    assert entry_module(m.entry_id).CALLS == [(8, 4096)]
    log = capsys.readouterr().err
    assert f"[kernelloop dispatch] {OP}: library entry {m.entry_id} (user, " in log


def test_dispatch_falls_back_when_no_entry_fits(lib, problem, monkeypatch):
    m = promoted(lib, problem)
    other_bucket, other_dtype = torch.randn(8, 100), torch.randn(8, 4096, dtype=torch.float64)
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    kind, _, why = dispatcher.choose(OP, [other_bucket], {})
    assert kind == "reference" and "no verified entry for cpu/float32/n128" in why
    assert "Triton cannot run here" in why
    torch.testing.assert_close(dispatch(OP, other_bucket), other_bucket * 2)
    assert "no verified entry for cpu/float64/n4096" in explain(OP, other_dtype)
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert dispatcher.choose(OP, [other_bucket], {})[0] == "seed"
    # A stale entry is skipped too.
    stale = dataclasses.replace(
        m, verification=dataclasses.replace(m.verification, stale=True, stale_reason="test")
    )
    lib.update(stale)
    assert "no verified entry for cpu/float32/n4096" in explain(OP, torch.randn(8, 4096))


# --- the store ------------------------------------------------------------------------------------
def test_user_entries_win_over_shipped_ones(tmp_path, lib, problem):
    m = promoted(lib, problem)
    both = Library(tmp_path / "user2", lib.user_dir)
    assert both.get(m.entry_id).location == "shipped"
    faster = dataclasses.replace(m, timing=dataclasses.replace(m.timing, median_ms=0.5))
    both.add(faster, ENTRY_SOURCE)
    (only,) = both.entries(OP)
    assert only.location == "user" and only.median_ms == 0.5


def test_add_refuses_a_manifest_that_does_not_match_its_source(lib, problem):
    m = promoted(lib, problem)
    with pytest.raises(ManifestError, match="does not match"):
        lib.add(m, ENTRY_SOURCE + "# changed\n")


def test_export_import_round_trip(tmp_path, lib, problem):
    m = promoted(lib, problem)
    archive = lib.export(None, tmp_path / "out" / "kernels.tar.gz")
    other = Library(tmp_path / "elsewhere", tmp_path / "no-shipped")
    (imported,) = other.import_(archive)
    assert imported == m and imported.location == "user"
    assert imported.source_path.read_text() == ENTRY_SOURCE
    assert other.entries() == [imported]
    with pytest.raises(EntryNotFound):
        lib.export(["nope-entry"], tmp_path / "x.tar.gz")


def _archive(path, members: dict[str, bytes], symlink: str | None = None):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if symlink:
            info = tarfile.TarInfo(symlink)
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
    return path


def test_import_refuses_traversal_links_and_tampered_entries(tmp_path, lib, problem):
    m = promoted(lib, problem)
    manifest, kernel = m.to_json().encode(), ENTRY_SOURCE.encode()
    target = Library(tmp_path / "target", tmp_path / "no-shipped")
    good = f"{OP}/{m.entry_id}"
    bad_archives = {
        "traversal": {f"../{m.entry_id}/kernel.py": kernel, f"{good}/manifest.json": manifest},
        "absolute": {f"/tmp/{m.entry_id}/kernel.py": kernel},
        "dotdot-id": {f"{OP}/../manifest.json": manifest},
        "tampered": {f"{good}/kernel.py": b"import os\n", f"{good}/manifest.json": manifest},
        "incomplete": {f"{good}/manifest.json": manifest},
        "wrong-folder": {f"{OP}/other/kernel.py": kernel, f"{OP}/other/manifest.json": manifest},
    }
    for name, members in bad_archives.items():
        with pytest.raises(LibraryError):
            target.import_(_archive(tmp_path / f"{name}.tar.gz", members))
    link = _archive(tmp_path / "link.tar.gz", {}, symlink=f"{good}/kernel.py")
    with pytest.raises(LibraryError, match="refusing"):
        target.import_(link)
    assert target.entries() == [] and not (tmp_path / "target").exists()


def test_remove(lib, problem):
    m = promoted(lib, problem)
    assert lib.remove(m.entry_id).entry_id == m.entry_id
    assert lib.entries() == [] and not (lib.user_dir / OP / m.entry_id).exists()
    with pytest.raises(EntryNotFound):
        lib.get(m.entry_id)
    with pytest.raises(EntryNotFound):
        lib.remove(m.entry_id)
    with pytest.raises(LibraryError, match="not an entry id"):
        lib.remove("../../etc")


def test_a_broken_manifest_is_skipped_with_a_warning(lib, problem):
    m = promoted(lib, problem)
    (m.folder / "manifest.json").write_text("{not json")
    with pytest.warns(UserWarning, match="skipping library entry"):
        assert lib.entries() == []


# --- CLI ------------------------------------------------------------------------------------------
def test_cli_list_show_verify_export_import_remove(tmp_path, lib, problem, monkeypatch):
    m = promoted(lib, problem)
    runner = CliRunner()

    def run(*args):
        with settings.override(library_dir=lib.user_dir):
            return runner.invoke(app, ["library", *args], env={"COLUMNS": "300"})

    listed = run("list", "--json")
    assert listed.exit_code == 0, listed.output
    (doc,) = json.loads(listed.stdout)
    assert doc["entry_id"] == m.entry_id and doc["location"] == "user"
    table = run("list", "--op", OP)
    assert table.exit_code == 0 and m.entry_id in table.stdout and "2.00x" in table.stdout

    shown = run("show", m.entry_id, "--json")
    assert shown.exit_code == 0
    assert json.loads(shown.stdout)["source"] == ENTRY_SOURCE
    assert "ModelNew" in run("show", m.entry_id).stdout
    assert run("show", "no-such-entry").exit_code == 2

    # `verify` uses the real evaluator by default: stand in for it (a CPU run cannot time).
    import kernelloop.sandbox.evaluate as evaluate_mod

    monkeypatch.setattr(evaluate_mod, "evaluate", lambda p, s, **kw: make_verdict())
    with_env(lib, m, triton="3.8.0")
    checked = run("verify", "--json")
    assert checked.exit_code == 0, checked.output
    (r,) = json.loads(checked.stdout)
    assert r["changed"] == {"triton": ["3.8.0", "3.9.0"]} and not r["stale"]
    rejected = make_verdict()
    rejected.reject("wrong_output", "bad")
    monkeypatch.setattr(evaluate_mod, "evaluate", lambda p, s, **kw: rejected)
    failed = run("verify", m.entry_id)
    assert failed.exit_code == 1 and "stale" in failed.stdout

    exported = run("export", str(tmp_path / "k.tar.gz"))
    assert exported.exit_code == 0 and (tmp_path / "k.tar.gz").is_file()
    assert run("remove", m.entry_id).exit_code == 0
    assert json.loads(run("list", "--json").stdout) == []
    imported = run("import", str(tmp_path / "k.tar.gz"))
    assert imported.exit_code == 0 and m.entry_id in imported.stdout
    assert run("remove", "no-such-entry").exit_code == 2
