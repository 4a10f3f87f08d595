"""The candidate worker is started ahead of need (sandbox/launch.py) and must never leak.

- its wall-clock timeout counts from the moment its job is posted, not from the spawn;
- before that, only the memory watchdog and a cap apply, and a worker past the cap is not armed;
- if the evaluation ends before the job is posted (reference failed, an exception), the waiting
  worker is killed and reaped;
- a worker that died while waiting is replaced by a fresh one, and the verdict is unchanged;
- a worker whose job never comes, or whose orchestrator is gone, exits by itself.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from paths import REPO

from kernelloop.kernelbench.loader import load_one
from kernelloop.sandbox import backends, launch, spawn
from kernelloop.sandbox import evaluate as evaluate_mod
from kernelloop.sandbox import reasons as R
from kernelloop.sandbox.evaluate import evaluate
from kernelloop.sandbox.limits import Limits

RELU = "level1/01_relu"
SOLUTION = REPO / "kernelbench/problems/level1/solutions/01_relu.py"
SANDBOXES = [
    pytest.param(
        "bwrap",
        marks=pytest.mark.skipif(
            backends.BACKENDS["bwrap"].available() is not None, reason="no bwrap"
        ),
    ),
    "process",
    pytest.param(
        "docker",
        marks=pytest.mark.skipif(
            backends.BACKENDS["docker"].available() is not None, reason="no Docker daemon"
        ),
    ),
]


def _start(tmp_path: Path, code: str, **kwargs) -> spawn.Running:
    wrapped = backends.process.wrap([sys.executable, "-c", code], str(tmp_path), False)
    return spawn.start(
        wrapped,
        cwd=str(tmp_path),
        env=spawn.scrubbed_env(str(tmp_path)),
        pass_fd=None,
        memory_cap=1 << 30,
        **kwargs,
    )


def _gone(pid: int) -> bool:
    return not os.path.exists(f"/proc/{pid}") and pid not in spawn._live


def _children() -> set[int]:
    return {pid for pid, ppid in spawn._process_table().items() if ppid == os.getpid()}


# --- spawn: arming -----------------------------------------------------------------------


def test_timeout_counts_from_arming(tmp_path):
    running = _start(tmp_path, "import time; time.sleep(2)", timeout_s=1.5, armed=False)
    time.sleep(1.0)
    assert running.arm()
    outcome = running.wait()
    assert not outcome.timed_out and outcome.returncode == 0
    assert outcome.warm_s >= 1.0 and outcome.wall_s < 1.5


def test_armed_at_spawn_the_same_worker_times_out(tmp_path):
    outcome = _start(tmp_path, "import time; time.sleep(3)", timeout_s=1.0).wait()
    assert outcome.timed_out and outcome.signal == "SIGKILL"


def test_an_unarmed_worker_past_its_cap_is_killed_and_cannot_be_armed(tmp_path):
    running = _start(
        tmp_path, "import time; time.sleep(30)", timeout_s=60, armed=False, unarmed_s=0.5
    )
    outcome = running.wait()
    assert outcome.timed_out and outcome.wall_s < 0.2  # it never ran armed
    assert not running.arm()
    assert _gone(running.proc.pid)


def test_cancel_kills_and_reaps(tmp_path):
    running = _start(tmp_path, "import time; time.sleep(30)", timeout_s=60, armed=False)
    time.sleep(0.3)
    running.cancel()
    outcome = running.wait()
    assert outcome.signal == "SIGKILL"
    assert _gone(running.proc.pid)


# --- evaluate: the warm worker ---------------------------------------------------------


@pytest.fixture
def started(monkeypatch) -> list[launch.WorkerRun]:
    """Every worker evaluate starts through launch.start_worker."""
    runs: list[launch.WorkerRun] = []
    original = launch.start_worker

    def spy(*args, **kwargs):
        runs.append(original(*args, **kwargs))
        return runs[-1]

    monkeypatch.setattr(launch, "start_worker", spy)
    return runs


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_a_failed_reference_kills_the_waiting_worker(sandbox, started, monkeypatch):
    before = _children()

    def failing_reference(*args):
        time.sleep(2.5)  # long enough for the worker to finish its imports and wait
        return {}, "boom"

    monkeypatch.setattr(evaluate_mod, "_reference_outputs", failing_reference)
    verdict = evaluate(load_one(RELU), SOLUTION.read_text(), sandbox=sandbox)
    assert [r.code for r in verdict.reasons] == [R.PROBLEM_ERROR]
    assert len(started) == 1 and _gone(started[0].pid)
    assert _children() <= before
    assert not spawn._live
    if sandbox == "docker":  # the waiting container is removed, not just its attached client
        import docker

        assert not docker.from_env().containers.list(all=True, filters={"label": "kernelloop"})


def test_an_exception_before_posting_kills_the_waiting_worker(started, monkeypatch):
    def broken_reference(*args):
        raise RuntimeError("the environment broke")

    monkeypatch.setattr(evaluate_mod, "_reference_outputs", broken_reference)
    with pytest.raises(RuntimeError, match="environment broke"):
        evaluate(load_one(RELU), SOLUTION.read_text(), sandbox="process")
    assert len(started) == 1 and _gone(started[0].pid)
    assert not spawn._live


def test_a_worker_that_died_while_waiting_is_replaced(started, monkeypatch):
    original = evaluate_mod._reference_outputs

    def reference_while_the_worker_dies(*args):
        os.killpg(started[0].pid, signal.SIGKILL)
        time.sleep(0.5)
        return original(*args)

    monkeypatch.setattr(evaluate_mod, "_reference_outputs", reference_while_the_worker_dies)
    verdict = evaluate(load_one(RELU), SOLUTION.read_text(), sandbox="process")
    assert verdict.accepted, verdict.reasons
    assert len(started) == 2 and all(_gone(r.pid) for r in started)


def test_the_candidate_phase_starts_at_posting(started):
    verdict = evaluate(load_one(RELU), SOLUTION.read_text(), sandbox="process")
    assert verdict.accepted, verdict.reasons
    assert len(started) == 1  # the early worker took the job
    # The worker's wall time is counted from the job's posting, like the candidate phase.
    assert verdict.worker["wall_s"] <= verdict.phases["candidate"] + 0.05


# --- the worker's own side -------------------------------------------------------------


def _boot(tmp_path: Path, write_fd: int, await_s: float) -> list[str]:
    boot = {
        "limits": Limits(None, 120, 1 << 30, 256).to_dict(),
        "isolate_network": False,
        "channel_fd": write_fd,
        "await_job": "worker-job.json",
        "await_s": await_s,
    }
    (tmp_path / "worker-boot.json").write_text(json.dumps(boot))
    return [sys.executable, "-m", "kernelloop.sandbox.worker", "worker-boot.json"]


def _spawn_worker(tmp_path: Path, argv: list[str], write_fd: int) -> subprocess.Popen:
    env = spawn.scrubbed_env(str(tmp_path), {"TRITON_INTERPRET": "1", "CUDA_VISIBLE_DEVICES": ""})
    (tmp_path / "tmp").mkdir(exist_ok=True)
    proc = subprocess.Popen(
        argv, cwd=tmp_path, env=env, pass_fds=(write_fd,), stderr=subprocess.PIPE, text=True
    )
    os.close(write_fd)
    return proc


def test_a_worker_whose_job_never_comes_exits_by_itself(tmp_path):
    read_fd, write_fd = os.pipe()
    proc = _spawn_worker(tmp_path, _boot(tmp_path, write_fd, await_s=1.0), write_fd)
    try:
        assert proc.wait(timeout=60) == 3
        assert "no job was posted" in proc.stderr.read()
    finally:
        os.close(read_fd)
        proc.kill()


def test_a_worker_whose_orchestrator_is_gone_exits_by_itself(tmp_path):
    read_fd, write_fd = os.pipe()
    proc = _spawn_worker(tmp_path, _boot(tmp_path, write_fd, await_s=600), write_fd)
    try:
        os.close(read_fd)  # as if the orchestrator had died: nobody reads the channel
        assert proc.wait(timeout=60) == 3
    finally:
        proc.kill()


def test_a_campaign_evaluation_leaves_a_warm_worker_for_the_next_and_close_ends_it():
    from kernelloop.sandbox import spare
    from kernelloop.sandbox.executors.base import EvalSpec
    from kernelloop.sandbox.executors.local import LocalExecutor

    problem, source = load_one(RELU), SOLUTION.read_text()
    executor = LocalExecutor(EvalSpec(size="cpu", sandbox="process"), cpu_workers=1)
    try:
        assert executor.submit(problem, source).result().accepted
        (left,) = spare._spares.values()  # started for the next evaluation, waiting for a job
        assert left.base.is_dir() and (left.base / "work" / "inputs").is_dir()
        second = executor.submit(problem, source).result()
        assert second.accepted, second.codes
        (newer,) = spare._spares.values()
        assert newer is not left and not left.base.exists()  # taken, used, cleaned up
    finally:
        executor.close()
    assert spare._spares == {} and not newer.base.exists()
    outcome, _, _ = newer.worker.wait()  # killed and reaped by close()
    assert outcome.returncode != 0 or outcome.signal is not None


def test_a_spare_left_idle_too_long_is_not_used(monkeypatch):
    from kernelloop.sandbox import spare

    class Worker:
        cancelled = False

        def cancel(self):
            Worker.cancelled = True

    base = spare.make_base()
    spare._spares[("k",)] = spare.Spare(base, Worker(), time.monotonic() - spare.IDLE_S - 1)
    assert spare.take(("k",)) is None and Worker.cancelled and not base.exists()
