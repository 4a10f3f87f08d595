"""Sandbox escapes: each must be contained, end in a verdict, and leave the host untouched.

Every candidate here runs with ``gate="report"`` so the static gate (which would stop most of them
before they run) is out of the way and the isolation backend itself is what is tested. Where it
makes sense the test runs under every backend: ``bwrap`` (a read-only root holding only what the
worker needs, private /tmp, PID and network namespaces), ``docker`` (the same in a container,
where a Docker daemon answers) and ``process`` (own session, network namespace, rlimits, scrubbed
environment, but the host's file system). Where the process backend offers no protection by
design (the file system), the test shows the static gate rejects the candidate before it runs.

The candidates live in tests/candidates/escape_*.py; values a test needs to inject (a port, a
unique marker, paths) replace one marked line of the file.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from paths import CANDIDATES, REPO

from kernelloop import settings
from kernelloop.kernelbench.loader import load_one
from kernelloop.sandbox import backends
from kernelloop.sandbox import evaluate as evaluate_mod
from kernelloop.sandbox import reasons as R
from kernelloop.sandbox.evaluate import evaluate

RELU = "level1/01_relu"
SECRET = "sk-test-secret-" + uuid.uuid4().hex[:8]


def _bwrap_missing() -> str | None:
    return backends.BACKENDS["bwrap"].available()


def _docker_missing() -> str | None:
    # CI (.ci/run) starts dockerd; elsewhere the docker runs skip with the daemon's reason.
    return backends.BACKENDS["docker"].available()


def _param(name: str, missing) -> pytest.param:
    why = missing()
    return pytest.param(name, marks=pytest.mark.skipif(why is not None, reason=f"{name}: {why}"))


SANDBOXES = [_param("bwrap", _bwrap_missing), "process", _param("docker", _docker_missing)]
# The backends that hide the host's file system and cap tasks with a cgroup of their own.
CONFINED = [_param("bwrap", _bwrap_missing), _param("docker", _docker_missing)]


def candidate(name: str, **lines: str) -> str:
    """The candidate's source with each ``NAME = ...  # replaced by the test`` line replaced."""
    text = (CANDIDATES / f"{name}.py").read_text()
    for var, value in lines.items():
        pattern = re.compile(rf"^{var} = .*$", re.MULTILINE)
        assert pattern.search(text), f"{name}.py has no line {var} = ..."
        text = pattern.sub(lambda _m, v=var, val=value: f"{v} = {val}", text, count=1)
    return text


def run(source: str, sandbox: str, **kwargs):
    return evaluate(load_one(RELU), source, gate="report", sandbox=sandbox, **kwargs)


def processes_with(marker: str) -> list[str]:
    """Command lines of live processes mentioning ``marker`` (scans /proc, no psutil)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{entry}/stat", "rb") as fh:
                zombie = fh.read().rsplit(b")", 1)[1].split()[0] == b"Z"
        except (OSError, IndexError):
            continue
        if marker in cmd and not zombie:
            found.append(f"{entry}: {cmd}")
    return found


# --- network -------------------------------------------------------------------------------------
def _own_address() -> str | None:
    """This machine's address on its default route (no packet is sent), if it has one."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.255.255.255", 1))
            addr = s.getsockname()[0]
    except OSError:
        return None
    return None if addr.startswith("127.") else addr


@pytest.fixture
def tcp_server():
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", 0))
    srv.listen(16)
    srv.settimeout(0.2)
    hits: list[tuple] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, addr = srv.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            hits.append(addr)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield srv.getsockname()[1], hits
    finally:
        stop.set()
        thread.join(timeout=2)
        srv.close()


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_network_is_unreachable(sandbox, tcp_server):
    port, hits = tcp_server
    targets = [("127.0.0.1", port)]
    if (addr := _own_address()) is not None:
        targets.append((addr, port))
    # The server works: from this (unsandboxed) process every target connects.
    for target in targets:
        socket.create_connection(target, timeout=3).close()
    deadline = time.time() + 3
    while len(hits) < len(targets) and time.time() < deadline:
        time.sleep(0.05)
    assert len(hits) == len(targets), "the test server is not reachable from the host itself"
    hits.clear()

    verdict = run(candidate("escape_network", TARGETS=repr(targets)), sandbox)
    time.sleep(0.5)
    assert hits == [], f"the candidate reached the host from {sandbox}: {hits}"
    assert verdict.accepted is False
    assert R.IMPORT_FAILED in verdict.codes, verdict.codes
    assert "network blocked" in verdict.build.log


# --- file system ---------------------------------------------------------------------------------
def _escape_paths(tag: str) -> list[Path]:
    return [
        Path("/tmp") / f"kernelloop-escape-{tag}",
        REPO.parent / f"kernelloop-escape-{tag}",  # next to the repository
        REPO / "tests" / f"kernelloop-escape-{tag}",  # inside it
    ]


@pytest.mark.parametrize("sandbox", CONFINED)
def test_writes_outside_workdir_do_not_reach_the_host(sandbox):
    paths = _escape_paths(uuid.uuid4().hex)
    try:
        verdict = run(
            candidate("escape_write_outside", PATHS=repr([str(p) for p in paths])), sandbox
        )
        assert verdict.correctness is not None and verdict.correctness.trials, verdict.codes
        leaked = [str(p) for p in paths if p.exists()]
        assert leaked == [], f"{sandbox} let the candidate write {leaked}"
    finally:
        for p in paths:
            p.unlink(missing_ok=True)


@pytest.mark.skipif(_bwrap_missing() is not None, reason="bwrap is not available")
def test_memory_backed_folders_are_capped():
    """/tmp and /dev/shm are tmpfs inside bwrap: neither the disk watchdog (work dir) nor the
    memory watchdog (resident pages) would see a candidate fill them."""
    verdict = run(candidate("escape_fill_memory_folders"), "bwrap")
    filled = dict(re.findall(r"FILLED (\S+) (\d+)", verdict.worker["stderr"]))
    assert set(filled) == {"/tmp", "/dev/shm"}, verdict.worker["stderr"][-2000:]
    assert all(int(n) <= 64 << 20 for n in filled.values()), filled


def test_writes_outside_workdir_under_process_backend_rely_on_the_static_gate():
    """The process backend does not hide the file system (see sandbox/backends/process.py):
    only the static gate protects it, so in a campaign (gate enforced) the candidate never runs."""
    paths = _escape_paths(uuid.uuid4().hex)
    try:
        source = candidate("escape_write_outside", PATHS=repr([str(p) for p in paths]))
        verdict = evaluate(load_one(RELU), source, gate="enforce", sandbox="process")
        assert verdict.accepted is False
        assert R.FILE_ACCESS in verdict.codes, verdict.codes
        assert verdict.correctness is None and not verdict.worker  # nothing ran
        assert [str(p) for p in paths if p.exists()] == []
    finally:
        for p in paths:
            p.unlink(missing_ok=True)


# What only the checkout and home directories hold, as the candidate prints a listing. (Its
# code folders are bound for an editable install: kernelloop/runs/ is the run store's *code*.)
_HOST_SIGNS = ("'pyproject.toml'", "'.git'", "'.gitkeep'", "'kernelloop.egg-info'", "'.bashrc'")


def _list_host(sandbox: str, gate: str = "report"):
    paths = [str(REPO), str(REPO / "runs"), str(REPO.parent), str(Path.home())]
    source = candidate("escape_list_host", PATHS=repr(paths))
    return evaluate(load_one(RELU), source, gate=gate, sandbox=sandbox)


def _listings(stderr: str) -> dict[str, list[str]]:
    """``LIST <path>: [names]`` lines of escape_list_host, as path -> names."""
    found = {}
    for line in stderr.splitlines():
        if line.startswith("LIST ") and ": [" in line:
            path, _, names = line[5:].partition(": ")
            found[path] = re.findall(r"'([^']*)'", names)
    return found


@pytest.mark.parametrize("sandbox", CONFINED)
def test_the_host_is_not_there_to_list(sandbox):
    """Threat row 28: a candidate that lists and reads the checkout, earlier runs and home
    directories (from fixed paths and from its own module paths) finds none of them, so none of
    it reaches the verdict's stderr, which a campaign shows to the Coder."""
    from kernelloop.sandbox.backends import host_view

    verdict = _list_host(sandbox)
    stderr = verdict.worker["stderr"]
    assert "LISTED" in stderr, f"the candidate did not look: {stderr[-500:]}"
    leaked = [sign for sign in _HOST_SIGNS if sign in stderr]
    assert leaked == [], f"{sandbox} showed the candidate {leaked}: {stderr[-3000:]}"
    # Of the checkout, only the code folders (and a venv) that host_view binds are there.
    bound = {
        Path(e.path).relative_to(REPO).parts[0]
        for e in host_view.worker_view([sys.executable])
        if Path(e.path).is_relative_to(REPO)
    }
    seen = set(_listings(stderr).get(str(REPO), []))
    assert seen <= bound, f"{sandbox} showed the checkout's {sorted(seen - bound)}"
    for secret in ("runs", "tests", ".git", "benchmarks", "pyproject.toml", "README.md"):
        assert f" {REPO / secret}" not in stderr, f"{sandbox} showed {REPO / secret}"
    assert verdict.correctness is not None and verdict.correctness.passed, verdict.codes


def test_the_process_backend_shows_the_host_so_the_gate_stops_the_lister():
    """The process backend does not hide the file system (by design): the same candidate finds
    the checkout there, which shows the test above can fail, and only the gate stops it."""
    stderr = _list_host("process").worker["stderr"]
    assert {"pyproject.toml", "runs"} <= set(_listings(stderr).get(str(REPO), [])), stderr[-2000:]
    assert f"READ {REPO / 'pyproject.toml'}" in stderr
    verdict = _list_host("process", gate="enforce")
    assert R.FILE_ACCESS in verdict.codes, verdict.codes
    assert verdict.correctness is None and not verdict.worker  # nothing ran


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_reference_outputs_are_out_of_reach(sandbox):
    # Found by this suite: reference outputs used to sit in ../private/ref while the candidate
    # ran, readable under the process backend (same uid). They now leave the disk first.
    verdict = run(candidate("escape_read_reference"), sandbox)
    assert verdict.accepted is False
    assert R.WRONG_OUTPUT in verdict.codes, verdict.codes


def test_reading_reference_outputs_is_stopped_by_the_gate():
    verdict = evaluate(
        load_one(RELU), candidate("escape_read_reference"), gate="enforce", sandbox="process"
    )
    assert verdict.accepted is False
    assert {R.FILE_ACCESS, R.FORBIDDEN_IMPORT} <= set(verdict.codes), verdict.codes
    assert not verdict.worker


# --- processes -----------------------------------------------------------------------------------
@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_no_process_outlives_the_evaluation(sandbox):
    marker = f"kl-leftover-{uuid.uuid4().hex}"
    started = time.perf_counter()
    try:
        verdict = run(candidate("escape_leftover_process", MARKER=repr(marker)), sandbox)
        elapsed = time.perf_counter() - started
        assert "spawned" in verdict.worker["stdout"], "the candidate did not start its processes"
        assert verdict.correctness is not None and verdict.correctness.trials
        assert elapsed < 60
        time.sleep(0.2)
        assert processes_with(marker) == []
    finally:
        for line in processes_with(marker):  # never leave them behind, even when failing
            os.kill(int(line.split(":")[0]), 9)


@pytest.fixture(scope="module", params=CONFINED)
def fork_bomb(request):
    """One bounded fork bomb per confined backend, shared by the tests that judge it."""
    marker = f"kl-forkbomb-{uuid.uuid4().hex}"
    started = time.perf_counter()
    try:
        with settings.override(memory_cap_bytes=4 << 30):
            source = candidate("escape_fork_bomb", MARKER=repr(marker))
            verdict = run(source, request.param, timeout_s=60)
        elapsed = time.perf_counter() - started
        time.sleep(0.2)
        left = processes_with(marker)
    finally:
        for line in processes_with(marker):
            os.kill(int(line.split(":")[0]), 9)
    return verdict, elapsed, left


@pytest.mark.slow
def test_fork_bomb_is_contained(fork_bomb):
    verdict, elapsed, left = fork_bomb
    assert verdict.accepted is False
    assert set(verdict.codes) & {R.RUNTIME_ERROR, R.MEMORY_LIMIT, R.CRASHED}, verdict.codes
    assert left == [], f"{len(left)} fork-bomb processes survived the evaluation"
    assert elapsed < 90
    # The host is fine: this process can still start a child.
    assert subprocess.run(["true"], check=False).returncode == 0


@pytest.mark.slow
def test_fork_bomb_is_bounded_by_the_process_limit(fork_bomb):
    # Found by this suite: RLIMIT_NPROC never binds root (and bwrap started by root maps the
    # sandbox back to uid 0), so the bound comes from a pids cgroup where one is writable.
    verdict, _, _ = fork_bomb
    if not any(i.startswith("pids-cgroup") for i in verdict.worker.get("isolation", [])):
        pytest.skip("no writable pids cgroup here: only the timeout and memory cap apply")
    counts = [
        int(m) for r in verdict.reasons for m in re.findall(r"FORKED (\d+) children", r.message)
    ]
    assert counts, f"no fork count in the verdict: {verdict.codes}"
    limit = evaluate_mod.MAX_WORKER_TASKS  # tasks: the worker's own threads count too
    assert max(counts) < limit, f"the candidate forked {max(counts)} children"
    assert "Resource temporarily unavailable" in " ".join(r.message for r in verdict.reasons)


# --- resources -----------------------------------------------------------------------------------
@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_memory_hog_is_stopped(sandbox):
    with settings.override(memory_cap_bytes=2 << 30):
        verdict = run(candidate("escape_memory_hog"), sandbox)
    assert verdict.accepted is False
    assert set(verdict.codes) & {R.MEMORY_LIMIT, R.RUNTIME_ERROR}, verdict.codes
    assert verdict.worker["peak_rss_mb"] < 3 << 10, verdict.worker  # the cap held
    assert verdict.correctness is not None  # it became a verdict, not an exception here


def test_outputs_past_the_file_size_cap_are_a_memory_verdict(monkeypatch):
    """The worker's file-size rlimit (1 GiB on CPU) also binds its own output files: relu at a
    GPU size evaluated on a CPU passes it. That is a named verdict, not a worker error."""
    from kernelloop.sandbox import evaluate as evaluate_mod

    real = evaluate_mod.Limits

    def small_files(**kw):
        return real(**{**kw, "file_bytes": 16 << 10})  # relu's CPU-size output is 64 KB

    monkeypatch.setattr(evaluate_mod, "Limits", small_files)
    solution = (REPO / "kernelbench/problems/level1/solutions/01_relu.py").read_text()
    verdict = run(solution, "process")
    assert verdict.codes == [R.MEMORY_LIMIT], verdict.reasons
    assert "pass this worker's file-size cap" in verdict.reasons[0].message


@pytest.mark.slow
@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_infinite_loop_times_out(sandbox):
    started = time.perf_counter()
    verdict = run(candidate("escape_infinite_loop"), sandbox, timeout_s=15)
    elapsed = time.perf_counter() - started
    assert verdict.accepted is False
    assert R.TIMEOUT in verdict.codes, verdict.codes
    assert 15 <= elapsed < 30, f"evaluate took {elapsed:.1f} s with timeout_s=15"


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_segfault_is_a_crash_verdict(sandbox):
    verdict = run(candidate("escape_segfault"), sandbox)
    assert verdict.accepted is False
    assert R.CRASHED in verdict.codes, verdict.codes


# --- output and the verdict channel --------------------------------------------------------------
@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_log_flood_is_bounded_and_still_evaluated(sandbox):
    started = time.perf_counter()
    verdict = run(candidate("escape_log_flood"), sandbox)
    assert time.perf_counter() - started < 60
    stdout = verdict.worker["stdout"]
    assert "flood" in stdout, "the flood did not happen"
    assert len(stdout) <= 20_000, f"{len(stdout)} characters of stdout kept in the verdict"
    assert len(verdict.to_json()) < 200_000
    assert verdict.correctness is not None and verdict.correctness.passed, verdict.codes
    assert verdict.accepted, verdict.codes  # an honest kernel that logs is still honest


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_forged_verdict_on_stdout_is_ignored(sandbox):
    verdict = run(candidate("escape_forged_stdout"), sandbox)
    assert '"accepted": true' in verdict.worker["stdout"], "the forgery was not printed"
    assert verdict.accepted is False
    assert R.WRONG_OUTPUT in verdict.codes, verdict.codes


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_forged_frames_on_every_descriptor_are_rejected(sandbox):
    verdict = run(candidate("escape_forged_fds"), sandbox)
    assert verdict.accepted is False
    assert set(verdict.codes) & {R.CHANNEL_TAMPERED, R.WRONG_OUTPUT}, verdict.codes
    assert verdict.to_dict()["correctness"] is not None


# --- secrets -------------------------------------------------------------------------------------
def _assert_no_secret(verdict_json: str, *texts: str) -> None:
    for text in (verdict_json, *texts):
        assert SECRET not in text


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_api_key_never_reaches_the_candidate(sandbox, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("KERNELLOOP_API_KEY", SECRET)
    verdict = run(candidate("escape_api_key"), sandbox)
    assert verdict.accepted is False
    messages = " ".join(r.message for r in verdict.reasons)
    assert "ENV DUMP" in messages, "the candidate did not get to dump its environment"
    assert "PATH=" in verdict.worker["stdout"]  # the dump really reached the verdict
    _assert_no_secret(
        verdict.to_json(), verdict.worker["stdout"], verdict.worker["stderr"], messages
    )


_ORCHESTRATOR = """
import json, sys
from kernelloop.kernelbench.loader import load_one
from kernelloop.sandbox.evaluate import evaluate
source = open(sys.argv[1]).read()
v = evaluate(load_one(sys.argv[2]), source, gate="report", sandbox=sys.argv[3])
print("VERDICT " + v.to_json())
"""


@pytest.mark.slow
@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_api_key_in_the_orchestrators_startup_environment_stays_private(sandbox, tmp_path):
    """The key set in the orchestrator's environment at start (as a real campaign has it) is also
    in /proc/<orchestrator>/environ: the worker must not be able to read that either."""
    src = tmp_path / "candidate.py"
    src.write_text(candidate("escape_api_key"))
    env = {**os.environ, "OPENAI_API_KEY": SECRET, "KERNELLOOP_API_KEY": SECRET}
    done = subprocess.run(
        [sys.executable, "-c", _ORCHESTRATOR, str(src), RELU, sandbox],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith("VERDICT ")), None)
    assert line is not None, done.stderr[-3000:]
    verdict = json.loads(line.removeprefix("VERDICT "))
    assert verdict["accepted"] is False
    assert "ENV DUMP" in json.dumps(verdict["reasons"])
    _assert_no_secret(line)
