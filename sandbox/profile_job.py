"""The profile job: a candidate run under a profiler (Nsight Compute) inside the sandbox.

Three parts, in the order they run:

1. :class:`Session` (orchestrator): the static gate reads the source; the trusted reference worker
   makes one trial's seeded inputs and the parameters (its outputs are not needed and are
   deleted); :meth:`Session.run` spawns the launcher through the isolation backend, the same
   ``launch.run_worker`` the evaluator uses, with the profiler's command in front of the worker.
2. the launcher (``python -m kernelloop.sandbox.profile_job --launch JOB -- PROFILER...``), inside
   the sandbox: under the ``process`` backend it moves itself into a new network namespace with
   loopback up, then execs the profiler. The profiler and the worker share that namespace: the
   profiler talks to its target locally, and neither reaches the network. (Under ``bwrap`` the
   whole sandbox already has such a namespace.) It records the channel's identity in the job,
   so the worker can tell whether the profiler passed the descriptor on.
3. the worker (``python -m kernelloop.sandbox.profile_job JOB``), the profiler's child: the
   evaluator's :class:`~.worker.Worker` loads the candidate and builds the model; a few warm-up
   calls (Triton compiles, autotuners try configurations), then the measured calls between
   ``cudaProfilerStart`` and ``cudaProfilerStop`` (the profiler runs with
   ``--profile-from-start off``). Frames report build and run failures. Nothing here is a
   verdict: profiles advise the Judge, the evaluator alone accepts or rejects.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import stat
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import channel, limits
from .frames import PROFILE as PROFILE_FRAMES
from .worker import Worker, _clean_error, _error_kind

MODULE = "kernelloop.sandbox.profile_job"
WARMUP_CALLS = 2
PROFILED_CALLS = 1
FRAMES_FILE = "profile-frames.jsonl"  # where frames go if the profiler closed the channel


@dataclasses.dataclass
class Attempt:
    """One profiled run: the profiler's console output and what the worker reported."""

    command: list[str]
    output: str  # stdout + stderr of the profiler and worker (bounded)
    failure: str | None  # why the candidate produced nothing to profile, if it did not
    launches: int | None = None  # Triton/NVRTC launches in the profiled calls
    device: str | None = None
    network: str | None = None


class Session:
    """A private work dir with the candidate, one trial's inputs and the parameters."""

    def __init__(
        self,
        problem,
        source: str,
        *,
        size: str | None = None,
        sets: dict[str, Any] | None = None,
        timeout_s: float | None = None,
        sandbox: str | None = None,
        backend: str | None = None,
        admin_counters: bool = False,
        device: str = "cuda",
    ) -> None:
        from .. import settings

        self.problem, self.source, self.cfg = problem, source, settings.get()
        self.size, self.sets, self.backend = size, sets, backend
        self.timeout_s = timeout_s or self.cfg.timeout_s
        self.sandbox, self.admin_counters = sandbox, admin_counters
        # "cpu" runs the same chain under the Triton interpreter, for tests with a stand-in
        # profiler (nothing measures a CPU run: there are no counters to read).
        self.device, self.gpu = device, device == "cuda"
        self.refused: str | None = None  # why nothing can run (gate, reference)

    def __enter__(self) -> Session:
        self.base = Path(tempfile.mkdtemp(prefix="kernelloop-profile-"))
        self.work = self.base / "work"
        try:
            self.refused = self._prepare()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)

    def _prepare(self) -> str | None:
        from . import backends, evaluate, static_gate
        from .plan import make_plan

        gate = static_gate.check_source(
            self.source, backend=self.backend, allow_torch=self.problem.allow_torch
        )
        if gate.findings:
            codes = ", ".join(sorted({f.code for f in gate.findings}))
            return f"the static gate refused the candidate ({codes}): run `kernelloop eval`"
        self.backend = self.backend or gate.backend
        self.iso = backends.select(self.sandbox or self.cfg.sandbox)
        if self.admin_counters and self.iso.NAME != "process":
            raise ValueError(
                "admin counters need the process sandbox (--sandbox process): under "
                f"{self.iso.NAME} the worker is an unprivileged user, whom the driver never "
                "counts as an admin"
            )
        plan = make_plan(self.problem, device=self.device, size=self.size, sets=self.sets)
        self.trial = plan.trials[0]
        self.init_seed = plan.init_seed
        private = self.base / "private"
        for d in (private / "ref", self.work / "inputs", self.work / "params", self.work / "tmp"):
            d.mkdir(parents=True, mode=0o700)
        (self.work / "candidate.py").write_text(self.source)
        ref_job = {
            "problem_path": str(self.problem.path),
            "dtype": self.problem.dtype,
            "device": self.device,
            "variants": {"main": plan.variants["main"]},
            "init_seed": plan.init_seed,
            "allow_tf32": self.problem.allow_tf32,
            "mode": "outputs",
            "trials": [self.trial.to_job()],
            "inputs_dir": str(self.work / "inputs"),
            "params_dir": str(self.work / "params"),
            "ref_dir": str(private / "ref"),
        }
        ref = evaluate._reference_outputs(ref_job, private, self.gpu, self.timeout_s, self.cfg)
        failure = ref[1]
        shutil.rmtree(private)  # the reference outputs: not needed, and not for the candidate
        return f"the reference failed: {failure}" if failure else None

    def run(self, command: Callable[[list[str]], list[str]]) -> Attempt:
        """Profile once. ``command`` turns the worker's argv into the profiler's argv."""
        from . import evaluate, launch
        from .limits import Limits

        job = {
            "candidate": "candidate.py",
            "device": self.device,
            "dtype": self.problem.dtype,
            "init_seed": self.init_seed,
            "eval_mode": self.problem.eval_mode,
            "allow_torch": list(self.problem.allow_torch),
            "inputs": f"inputs/{self.trial.name}.bin",
            "warmup_calls": WARMUP_CALLS,
            "profiled_calls": PROFILED_CALLS,
            "admin_counters": self.admin_counters,
            "limits": Limits(
                # CUDA maps huge virtual ranges: on a GPU the RSS watchdog caps memory instead
                memory_bytes=None if self.gpu else self.cfg.memory_cap_bytes,
                cpu_seconds=int(self.timeout_s * 4) + 30,
                file_bytes=16 << 30,
                processes=256,
            ).to_dict(),
        }
        (self.work / FRAMES_FILE).unlink(missing_ok=True)
        writable, env = (), {}
        if self.backend == "cuda-inline":
            ext = evaluate._extension_cache(self.source, self.cfg)
            writable, env = (ext,), {"TORCH_EXTENSIONS_DIR": ext}
        seen: list[str] = []

        def launcher(argv: list[str]) -> list[str]:
            profiler = command(argv)
            seen[:] = profiler
            return [argv[0], "-m", MODULE, "--launch", argv[-1], "--", *profiler]

        outcome, frames, bad = launch.run_worker(
            MODULE,
            job,
            workdir=self.work,
            wrapped_by=self.iso,
            gpu=self.gpu,
            timeout_s=self.timeout_s,
            memory_cap=self.cfg.memory_cap_bytes,
            writable=writable,
            env=env,
            max_tasks=evaluate.MAX_WORKER_TASKS,
            command=launcher,
            schema=PROFILE_FRAMES,  # the candidate runs in this worker: its frames are checked
        )
        found = {f["type"]: f for _, f in frames} or _frames_from_file(self.work / FRAMES_FILE)
        attempt = Attempt(
            command=seen,
            output=(outcome.stdout + "\n" + outcome.stderr).strip(),
            failure=_failure(found, outcome, bad, self.timeout_s),
            launches=found.get("profiled", {}).get("launches"),
            device=found.get("hello", {}).get("gpu"),
            network=found.get("hello", {}).get("network"),
        )
        return attempt


def _frames_from_file(path: Path) -> dict[str, dict]:
    """Frames the worker wrote to a file (the profiler kept it from the channel), up to the
    first one its schema refuses: the candidate could have written any of them."""
    if not path.is_file():
        return {}
    with open(path, errors="replace") as fh:
        text = fh.read(channel.MAX_BYTES)  # the channel's caps hold for this file too
    found, check = {}, PROFILE_FRAMES.checker()
    for line in text.splitlines()[: channel.MAX_FRAMES]:
        try:
            frame = json.loads(line)
            if not isinstance(frame, dict):
                break
            check(frame)
        except (ValueError, RecursionError):  # not JSON, or a FrameError
            break
        found[frame["type"]] = frame
    return found


def _failure(found: dict[str, dict], outcome, bad: str | None, timeout_s: float) -> str | None:
    build, profiled = found.get("build"), found.get("profiled")
    if build and not build.get("ok"):
        return f"the candidate failed to build: {build.get('error', '')}"[:2000]
    if profiled and not profiled.get("ok"):
        return f"the candidate failed in forward: {profiled.get('error', '')}"[:2000]
    if outcome.timed_out:
        return f"the profiled run passed its {timeout_s:.0f} s timeout (profiler included)"
    if outcome.memory_exceeded:
        return "the profiled run passed the memory cap (profiler included)"
    if "error" in found:
        return f"the profile worker failed: {found['error'].get('message', '')}"[:2000]
    if build and profiled is None:
        tail = outcome.stderr.strip()[-1500:]
        code = outcome.returncode
        return f"the worker ended before its profiled call (exit status {code}): {tail}"
    if bad and not found:
        return f"no report from the worker ({bad}); exit status {outcome.returncode}"
    return None  # the worker never started: the profiler's own output says why


# --- inside the sandbox ------------------------------------------------------------------------
class _FileFrames:
    """Frames as JSON lines in the work dir, for a profiler that does not pass descriptors on."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def send(self, frame_type: str, /, **payload: Any) -> None:
        with open(self.path, "a") as fh:
            fh.write(json.dumps({"type": frame_type, **payload}, default=str) + "\n")


def _channel_ok(fd: int, ino: int | None) -> bool:
    try:
        st = os.fstat(fd)
    except OSError:
        return False
    return stat.S_ISFIFO(st.st_mode) and (ino is None or st.st_ino == ino)


def _loopback_up() -> None:
    """Bring ``lo`` up in a fresh network namespace (SIOCGIFFLAGS/SIOCSIFFLAGS, IFF_UP)."""
    import fcntl
    import socket
    import struct

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sH14s", b"lo", 0, b"")
        flags = struct.unpack("16sH", fcntl.ioctl(s, 0x8913, req)[:18])[1]
        fcntl.ioctl(s, 0x8914, struct.pack("16sH14s", b"lo", flags | 0x1, b""))


def launch(argv: list[str]) -> int:
    """``--launch JOB -- PROFILER...``: isolate the network if the backend asked, then exec."""
    job_path, profiler = Path(argv[0]), argv[argv.index("--") + 1 :]
    job = json.loads(job_path.read_text())
    network = "sandbox"
    if job.get("isolate_network"):
        network = limits.isolate_network()
        if network.startswith("isolated"):
            try:
                _loopback_up()
            except OSError as exc:
                network += f", loopback down ({exc.strerror})"
    if "channel_path" in job:  # a container's FIFO channel: opened here, inherited by the worker
        job["channel_fd"] = channel.open_fifo_writer(job.pop("channel_path"))
        os.set_inheritable(job["channel_fd"], True)
    fd = job["channel_fd"]
    job["launcher"] = {
        "network": network,
        "channel_ino": os.fstat(fd).st_ino if _channel_ok(fd, None) else None,
    }
    job_path.write_text(json.dumps(job))
    os.execv(profiler[0], profiler)
    return 127  # not reached


class ProfileWorker(Worker):
    """The evaluator's worker (same build, same guards), with one job: warm up, then the
    measured calls between cudaProfilerStart and cudaProfilerStop."""

    def run(self) -> None:
        torch, job = self.torch, self.job
        cuda = self.device == "cuda"
        self.out.send(
            "hello",
            pid=os.getpid(),
            device=self.device,
            network=self.network,
            gpu=torch.cuda.get_device_name(0) if cuda else None,
        )
        started = time.perf_counter()
        try:
            self.load_candidate()
            model = self.model_for("main")
        except BaseException as exc:
            self.out.send("build", ok=False, kind=_error_kind(exc), error=_clean_error(exc))
            return
        self.out.send("build", ok=True, seconds=time.perf_counter() - started)
        from . import tensorio

        inputs, _ = tensorio.read(self.work / job["inputs"])
        inputs = [t.to(self.device) if isinstance(t, torch.Tensor) else t for t in inputs]
        sync = torch.cuda.synchronize if cuda else (lambda: None)
        try:
            with torch.no_grad():
                for _ in range(job["warmup_calls"]):
                    model(*inputs)
                sync()
                before = self.guards.launches()
                if cuda:
                    torch.cuda.profiler.start()
                try:
                    for _ in range(job["profiled_calls"]):
                        model(*inputs)
                    sync()
                finally:
                    if cuda:
                        torch.cuda.profiler.stop()
        except BaseException as exc:  # SystemExit from a candidate is an error too
            self.out.send("profiled", ok=False, kind=_error_kind(exc), error=_clean_error(exc))
            return
        launches = self.guards.launches() - before
        self.out.send("profiled", ok=True, calls=job["profiled_calls"], launches=launches)


def _apply_limits(lim: limits.Limits, keep_admin: bool) -> None:
    if not keep_admin:
        limits.apply(lim)  # as the evaluator's worker: rlimits, and root drops its capabilities
        return
    # Trusted candidates on a machine that restricts counters to admins: the driver checks
    # CAP_SYS_ADMIN in the profiled process, so keep root's capabilities. The rlimits still hold
    # (RLIMIT_NPROC never binds root; the pids cgroup does), though root could raise them.
    import resource

    caps = [
        (resource.RLIMIT_CPU, lim.cpu_seconds),
        (resource.RLIMIT_FSIZE, lim.file_bytes),
        (resource.RLIMIT_CORE, 0),
    ]
    if lim.memory_bytes:
        caps.append((resource.RLIMIT_AS, lim.memory_bytes))
    for kind, value in caps:
        _, hard = resource.getrlimit(kind)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(kind, (value, value))


def main(argv: list[str]) -> int:
    if len(argv) > 1 and argv[1] == "--launch":
        return launch(argv[2:])
    job = json.loads(Path(argv[1]).read_text())
    launched = job.get("launcher", {})
    _apply_limits(limits.Limits(**job["limits"]), bool(job.get("admin_counters")))
    # The network was isolated by the launcher, for the profiler and this worker together.
    fd_ok = _channel_ok(job["channel_fd"], launched.get("channel_ino"))
    if not fd_ok:
        job = {**job, "channel_fd": -1}
    worker = ProfileWorker(job)
    if not fd_ok:
        worker.out = _FileFrames(Path.cwd() / FRAMES_FILE)
    worker.network = launched.get("network", "unknown")
    try:
        worker.run()
    except Exception as exc:
        worker.out.send("error", message=_clean_error(exc), trace=traceback.format_exc()[-4000:])
        return 1
    worker.out.send("done")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
