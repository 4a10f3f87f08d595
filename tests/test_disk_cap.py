"""Threat row 29: filling the disk. A candidate's work dir may grow by what the evaluation
legitimately writes there (its output bundles, room for extra ones, a margin for caches), and no
more: the watchdog of ``sandbox/spawn.py`` walks it (``sandbox/disk_watch.py``) and stops the
worker past the cap, and the verdict says DISK_LIMIT with the cap and the growth.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from paths import CANDIDATES

from kernelloop import settings
from kernelloop.kernelbench.loader import load_one, solution_path
from kernelloop.sandbox import backends, disk_watch, spawn
from kernelloop.sandbox import evaluate as evaluate_mod
from kernelloop.sandbox import reasons as R
from kernelloop.sandbox.evaluate import evaluate
from kernelloop.sandbox.plan import make_plan

RELU = "level1/01_relu"
MiB = 1 << 20


def _fill(path: Path, mib: int) -> None:
    path.write_bytes(os.urandom(mib * MiB))  # random: nothing compresses or dedupes it away


def _over(folder: Path, cap: int) -> tuple[disk_watch.DiskWatch, str | None]:
    watch = disk_watch.DiskWatch(disk_watch.DiskCap(str(folder), cap))
    return watch, watch.over(time.perf_counter(), force=True)


# --- the walk -----------------------------------------------------------------------------------
def test_growth_counts_from_the_baseline(tmp_path):
    _fill(tmp_path / "inputs.bin", 4)  # the trusted reference's inputs: there before
    watch = disk_watch.DiskWatch(disk_watch.DiskCap(str(tmp_path), 2 * MiB))
    assert watch.over(time.perf_counter(), force=True) is None
    (tmp_path / "out").mkdir()
    _fill(tmp_path / "out" / "a.bin", 1)
    assert watch.over(time.perf_counter(), force=True) is None
    _fill(tmp_path / "out" / "b.bin", 2)
    why = watch.over(time.perf_counter(), force=True)
    assert why is not None and "grew by 3.0 MiB, past its cap of 2.0 MiB" in why, why
    assert 3 * MiB <= watch.peak < 4 * MiB


def test_sparse_files_and_hard_links_count_what_they_hold(tmp_path):
    watch = disk_watch.DiskWatch(disk_watch.DiskCap(str(tmp_path), 2 * MiB))
    with open(tmp_path / "sparse.bin", "wb") as fh:
        fh.truncate(1 << 30)  # 1 GiB long, nothing written: no disk used
    _fill(tmp_path / "data.bin", 1)
    for i in range(10):
        os.link(tmp_path / "data.bin", tmp_path / f"link-{i}.bin")
    assert watch.over(time.perf_counter(), force=True) is None, watch.peak


def test_too_many_entries_is_over_the_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(disk_watch, "MAX_ENTRIES", 50)  # 20000 in earnest: a walk stays cheap
    _, why = _over(tmp_path, 1 << 30)
    assert why is None
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    for i in range(60):
        (nested / f"{i}").touch()
    _, why = _over(tmp_path, 1 << 30)
    assert why is not None and "more than 50 files and folders" in why


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a folder whatever its mode")
def test_a_folder_hidden_from_the_walk_is_over_the_cap(tmp_path):
    watch = disk_watch.DiskWatch(disk_watch.DiskCap(str(tmp_path), 1 << 30))
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    hidden.chmod(0)
    try:
        why = watch.over(time.perf_counter(), force=True)
    finally:
        hidden.chmod(0o700)
    assert why is not None and "cannot be read" in why


# --- the watchdog -------------------------------------------------------------------------------
_WRITER = """
import os, time
chunk = os.urandom(1 << 20)
for i in range({files}):
    with open(f"fill-{{i}}.bin", "wb") as fh:
        fh.write(chunk)
    time.sleep({pause})
time.sleep({linger})
"""


def _start(tmp_path: Path, files: int, pause: float = 0.0, linger: float = 0.0, **kwargs):
    code = _WRITER.format(files=files, pause=pause, linger=linger)
    wrapped = backends.process.wrap([sys.executable, "-c", code], str(tmp_path), False)
    return spawn.start(
        wrapped,
        cwd=str(tmp_path),
        env=spawn.scrubbed_env(str(tmp_path)),
        pass_fd=None,
        timeout_s=60,
        memory_cap=1 << 30,
        **kwargs,
    )


def test_the_watchdog_stops_a_worker_past_its_cap(tmp_path):
    cap = disk_watch.DiskCap(str(tmp_path), 4 * MiB)
    outcome = _start(tmp_path, files=400, pause=0.005, disk=cap).wait()
    assert outcome.disk_exceeded and "past its cap of 4.0 MiB" in outcome.disk_exceeded
    assert outcome.signal == "SIGKILL" and outcome.wall_s < 10
    assert outcome.peak_disk_bytes < 200 * MiB  # stopped long before its 400 MiB


def test_what_a_worker_wrote_before_its_job_was_posted_does_not_count(tmp_path):
    running = _start(tmp_path, files=8, linger=0.6, armed=False)
    time.sleep(0.4)  # 8 MiB written while waiting (as the reference writes inputs)
    assert running.arm(disk_watch.DiskCap(str(tmp_path), 1 * MiB))
    outcome = running.wait()
    assert outcome.disk_exceeded is None and outcome.returncode == 0, outcome


def test_a_burst_written_between_two_looks_is_still_seen(tmp_path):
    cap = disk_watch.DiskCap(str(tmp_path), 1 * MiB)
    outcome = _start(tmp_path, files=8, disk=cap).wait()  # done in well under 0.2 s
    assert outcome.returncode == 0 and outcome.disk_exceeded, outcome


# --- the evaluator ------------------------------------------------------------------------------
def test_the_cap_is_derived_from_the_outputs():
    import torch

    problem = load_one(RELU)
    plan = make_plan(problem, device="cpu")
    refs = {t.name: [torch.zeros(1000)] for t in plan.trials}  # 4000 bytes each
    with settings.override(disk_margin_bytes=MiB) as cfg:
        cap = evaluate_mod._disk_cap(plan, refs, cfg)
    runs = len(plan.trials) + 1  # and the repeat (drift runs are GPU only)
    per_run = (4000 + (64 << 10)) * (1 + evaluate_mod.ALTERNATES_PER_TRIAL)
    assert cap == int(runs * per_run * 1.25) + MiB


def test_the_cap_allows_every_alternate_a_trial_may_write():
    alternates = pytest.importorskip("kernelloop.sandbox.interpreter.alternates")
    assert evaluate_mod.ALTERNATES_PER_TRIAL >= 1 + alternates.MAX_CONFIGS  # + reversed order


def test_filling_the_disk_is_a_disk_limit_verdict():
    source = (CANDIDATES / "escape_disk_fill.py").read_text()
    started = time.perf_counter()
    with settings.override(disk_margin_bytes=MiB):  # a cap of a few MiB: stopped at once
        verdict = evaluate(load_one(RELU), source, gate="report", sandbox="auto")
    assert verdict.accepted is False
    assert verdict.codes == [R.DISK_LIMIT], verdict.reasons
    assert "past its cap of" in verdict.reasons[0].message
    assert verdict.worker["disk_mb"] < 256, verdict.worker  # the candidate meant 512
    assert time.perf_counter() - started < 60


def test_an_honest_candidate_fits_a_tight_cap():
    problem = load_one(RELU)
    with settings.override(disk_margin_bytes=MiB):
        verdict = evaluate(problem, solution_path(problem).read_text(), sandbox="auto")
    assert verdict.accepted, verdict.reasons
    assert 0 < verdict.worker["disk_mb"] < 8, verdict.worker
