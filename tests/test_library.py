"""The verified-kernel library on CPU: promotion rules, the store, dispatch, re-validation, CLI.

A tiny op (``test_library.scale``: x * 2) and a problem file in tmp_path stand in for the
efficiency modules; verdicts with timings are built by hand from the real statistics helpers, so
the promotion bar (the speedup's lower bound) is exercised with real intervals. The environment
fingerprint is pinned to a fake one, so the tests mean the same on a GPU machine.
"""

from __future__ import annotations

import dataclasses
import io
import json
import sys
import tarfile

import pytest
import torch
from typer.testing import CliRunner

from kernelloop import settings
from kernelloop.cli import app
from kernelloop.kernelbench.problem import load_file
from kernelloop.library import dispatch, dispatcher, explain, fingerprint, ops
from kernelloop.library.manifest import Manifest, ManifestError, entry_id_for
from kernelloop.library.promote import NotPromotable, promote, promote_from_run
from kernelloop.library.store import EntryNotFound, Library, LibraryError
from kernelloop.library.verify import verify
from kernelloop.runs.store import RunStore
from kernelloop.sandbox.stats import bootstrap_ratio, summarize
from kernelloop.sandbox.verdict import TimingResult, Verdict

OP = "test_library.scale"  # the registry is global: a name no module will use
PROBLEM_ID = "test_library_scale"
FAKE_GPU = "Fake GPU 80GB"
FAKE_ENV = {
    "gpu": FAKE_GPU,
    "compute_capability": None,
    "driver": "999.1",
    "cuda": "12.8",
    "torch": "2.13.0",
    "triton": "3.9.0",
    "python": "3.12.0",
}

PROBLEM_SOURCE = '''"""Scale by two."""

import torch
import torch.nn as nn

rows = 8
n = 4096

SIZES = {"cpu": {"n": 100}}


class Model(nn.Module):
    def __init__(self, factor):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return x * self.factor


def get_inputs():
    return [torch.randn(rows, n)]


def get_init_inputs():
    return [2.0]
'''

# The entry computes the same values as the reference; it records each call, which is how the
# dispatch test proves that the entry, not the reference, ran.
ENTRY_SOURCE = """import torch

CALLS = []


class ModelNew(torch.nn.Module):
    def __init__(self, factor):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        CALLS.append(tuple(x.shape))
        return x * self.factor
"""

ops.register(
    ops.OpSpec(
        name=OP,
        problems=(PROBLEM_ID,),
        reference=lambda x, factor=2.0: x * factor,
        seed=lambda x, factor=2.0: x * factor,
        init_args=lambda config: [config.get("factor", 2.0)],
        config_from_init=lambda init: {"factor": init[0]},
        bucket=lambda tensors, config: f"n{ops.pow2_bucket(tensors[0].shape[-1])}",
    )
)


# --- fixtures and builders ------------------------------------------------------------------------
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


def _samples(center: float, spread: float = 0.01, n: int = 21) -> list[float]:
    return [center * (1 + spread * (i - n // 2) / (n // 2)) for i in range(n)]


def make_verdict(
    *,
    candidate_ms: float = 1.0,
    eager_ms: float = 2.0,
    compile_ms: float | None = 1.6,
    timed: bool = True,
    size: str = "gpu",
) -> Verdict:
    timing = None
    if timed:
        cand, eager = _samples(candidate_ms), _samples(eager_ms)
        comp = _samples(compile_ms) if compile_ms is not None else None
        timing = TimingResult(
            gpu=FAKE_GPU,
            candidate=summarize(cand),
            eager=summarize(eager),
            compiled=summarize(comp) if comp else None,
            speedup_eager=bootstrap_ratio(eager, cand, n_boot=200),
            speedup_compile=bootstrap_ratio(comp, cand, n_boot=200) if comp else None,
            order=["candidate", "eager", "compiled"],
        )
    return Verdict(
        accepted=True,
        reasons=[],
        problem_id=PROBLEM_ID,
        size=size,
        backend="triton",
        device=FAKE_GPU if timed else "cpu (Triton interpreter)",
        sandbox="process",
        timing=timing,
        timing_note=None if timed else "no CUDA GPU here: correctness only, timing skipped",
    )


def promoted(lib, problem, **verdict_args) -> Manifest:
    return promote(
        make_verdict(**verdict_args),
        ENTRY_SOURCE,
        problem,
        provenance={"run_id": "run-1", "candidate_id": "c1"},
        library=lib,
    )


def _entry_module(entry_id: str):
    return sys.modules[f"kernelloop_entry_{entry_id.replace('-', '_')}"]


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
    reason = promote_from_run(cpu_run, PROBLEM_ID, problem=problem, library=lib)
    assert isinstance(reason, str) and "needs a GPU timing" in reason
    empty = RunStore.create(tmp_path / "runs", {}, run_id="run-empty")
    assert "no accepted candidate" in promote_from_run(empty, PROBLEM_ID, library=lib)


# --- dispatch -------------------------------------------------------------------------------------
def test_dispatch_runs_the_promoted_entry_and_says_so(lib, problem, capsys):
    x = torch.randn(8, 4096)
    assert "no verified entry" in explain(OP, x)  # decided, and the decision cached...
    m = promoted(lib, problem)
    assert m.entry_id in explain(OP, x)  # ...until this process wrote an entry
    with settings.override(dispatch_log=True):
        out = dispatch(OP, x)
    torch.testing.assert_close(out, x * 2)
    assert _entry_module(m.entry_id).CALLS == [(8, 4096)]
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


# --- re-validation --------------------------------------------------------------------------------
def _with_env(lib, m, **env) -> Manifest:
    return lib.update(dataclasses.replace(m, env={**m.env, **env}))


def _fake_evaluate(verdict, calls):
    def evaluate(problem, source, **kwargs):
        calls.append((problem.id, source, kwargs))
        return verdict

    return evaluate


def test_verify_marks_an_entry_stale_when_torch_changed_and_revalidation_fails(lib, problem):
    m = _with_env(lib, promoted(lib, problem), torch="2.12.0")
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
    m = _with_env(lib, promoted(lib, problem), driver="1.0")
    problem.path.unlink()
    (result,) = verify(lib, evaluate=_fake_evaluate(None, []))
    assert not result["ran"] and result["stale"] and "is not bundled" in result["reason"]
    assert "driver 1.0 -> 999.1" in lib.get(m.entry_id).stale_reason


def test_verify_restores_an_entry_that_passes_again(lib, problem):
    m = _with_env(lib, promoted(lib, problem), torch="2.12.0")
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
    _with_env(lib, m, torch="2.12.0")
    before = (lib.user_dir / OP / m.entry_id / "manifest.json").read_text()
    (result,) = verify(shipped, evaluate=_fake_evaluate(make_verdict(), []))
    assert result["location"] == "shipped" and not result["written"]
    assert "read-only" in result["note"]
    assert (lib.user_dir / OP / m.entry_id / "manifest.json").read_text() == before
    with pytest.raises(LibraryError, match="shipped with kernelloop"):
        shipped.remove(m.entry_id)
    with pytest.raises(LibraryError, match="read-only"):
        shipped.update(m)


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
    _with_env(lib, m, triton="3.8.0")
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
