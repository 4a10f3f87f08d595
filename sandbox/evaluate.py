"""The one evaluator: static gate, reference, candidate worker, comparison, timing, verdict.

``evaluate(problem, source)`` is the whole trust story in one function, top-down:

1. the static gate reads the source (nothing runs yet);
2. a trusted reference worker makes seeded inputs, reference outputs (kept in a private folder the
   candidate's sandbox cannot see) and the reference's parameters;
3. the candidate worker runs in an isolation backend: build, trials, a repeat, timing on a GPU,
   drift trials; it reports frames on a dedicated channel and writes outputs to files;
4. this process compares every output with the reference, checks inputs for mutation, reads the
   run-time guards' reports, and turns timings into statistics with confidence intervals;
5. everything becomes one :class:`Verdict`.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import os
import queue
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .. import settings as settings_mod
from ..kernelbench.problem import Problem
from . import backends, channel, checks, reasons, spawn, static_gate, tensorio
from .limits import Limits
from .plan import Plan, make_plan
from .verdict import Reason, Verdict

GATE_MODES = ("enforce", "report")
# Set by an executor's per-GPU queue (sandbox/executors/local.py): the GPU this thread's
# evaluations may use. None: whatever CUDA_VISIBLE_DEVICES the orchestrator has.
assigned_gpu: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "assigned_gpu", default=None
)
MAX_WORKER_TASKS = 512  # processes + threads of one candidate worker (torch and Triton need ~50)


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _device_name(device: str) -> str:
    if device == "cuda":
        import torch

        return torch.cuda.get_device_name(0)
    return "cpu (Triton interpreter)"


@contextlib.contextmanager
def _timed(phases: dict[str, float], name: str) -> Iterator[None]:
    """Adds the block's wall time to ``phases[name]`` (seconds per phase, in the verdict)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        phases[name] = round(phases.get(name, 0.0) + time.perf_counter() - started, 4)


def _collect(reader: channel.Reader) -> tuple[list[tuple[float, dict]], str | None]:
    """All frames a finished worker sent, with arrival times, or why the stream was bad."""
    frames: list[tuple[float, dict]] = []
    while True:
        try:
            stamp, frame = reader.next(timeout=10)
        except queue.Empty:
            return frames, "the channel stayed open after the worker ended"
        if frame is None:
            return frames, None
        if isinstance(frame, channel.ChannelError):
            return frames, str(frame)
        frames.append((stamp, frame))


def _extension_cache(source: str, cfg) -> str:
    """``load_inline`` builds take minutes: cache them per source hash. A candidate can only
    write into the folder of its own source, so it cannot poison another candidate's build."""
    path = cfg.cache_dir / "torch_extensions" / hashlib.sha256(source.encode()).hexdigest()[:24]
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


def _run_worker(
    module: str,
    job: dict,
    *,
    workdir: Path,
    wrapped_by,
    gpu: bool,
    timeout_s: float,
    memory_cap: int,
    writable: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    max_tasks: int | None = None,
    command: Callable[[list[str]], list[str]] | None = None,
):
    stem = module.rsplit(".", 1)[-1]
    job_path = workdir / f"{stem}-job.json"
    argv = [sys.executable, "-m", module, job_path.name]
    if command is not None:  # e.g. a profiler in front of the worker (sandbox/profile_job.py)
        argv = command(argv)
    wrapped = wrapped_by.wrap(argv, str(workdir), gpu, writable)
    job = {**job, "isolate_network": wrapped.isolate_network}
    if wrapped.fifo_channel:  # a container cannot inherit our pipe (sandbox/channel.py)
        fifo = workdir / f"{stem}-channel"
        os.mkfifo(fifo, 0o600)
        reader, write_fd = channel.Reader.from_fifo(str(fifo)), None
        job["channel_path"] = f"{wrapped.workdir or workdir}/{fifo.name}"
    else:
        read_fd, write_fd = os.pipe()
        reader = channel.Reader(read_fd)
        job["channel_fd"] = write_fd
    job_path.write_text(json.dumps(job))
    extra = {} if gpu else {"TRITON_INTERPRET": "1", "CUDA_VISIBLE_DEVICES": ""}
    if gpu and (index := assigned_gpu.get()) is not None:
        extra["CUDA_VISIBLE_DEVICES"] = str(index)  # the executor's queue for this GPU
    outcome = spawn.run(
        wrapped,
        cwd=str(workdir),
        env=spawn.scrubbed_env(wrapped.workdir or str(workdir), {**extra, **(env or {})}),
        pass_fd=write_fd,
        timeout_s=timeout_s,
        memory_cap=memory_cap,
        max_tasks=max_tasks,
    )
    reader.release()  # a FIFO whose writer never came (the container did not start)
    frames, bad = _collect(reader)
    return outcome, frames, bad


class _Frames:
    """Stands in for a channel writer when the reference runs in this process."""

    def __init__(self) -> None:
        self.frames: dict[str, dict] = {}

    def send(self, frame_type: str, /, **payload: Any) -> None:
        self.frames[frame_type] = {"type": frame_type, **payload}


def _reference_outputs(job: dict, private: Path, gpu: bool, timeout_s: float, cfg):
    """Reference outputs: in this process on CPU (trusted code, and it saves a process start);
    in a worker on a GPU, so the orchestrator holds no CUDA context or GPU memory."""
    if not gpu:
        from . import reference

        sink = _Frames()
        try:
            reference.set_precision_policy(job.get("allow_tf32", False))
            reference.outputs(job, sink)
        except Exception as exc:  # the problem's own code failed: report, do not crash
            return {}, f"{type(exc).__name__}: {exc}"
        return sink.frames, None
    outcome, frames, bad = _run_worker(
        "kernelloop.sandbox.reference",
        job,
        workdir=private,
        wrapped_by=backends.process,
        gpu=gpu,
        timeout_s=max(timeout_s, 600),
        memory_cap=cfg.memory_cap_bytes,
    )
    found = {f["type"]: f for _, f in frames}
    if "done" not in found:
        return found, found.get("error", {}).get("message") or bad or outcome.stderr[-2000:]
    return found, None


def _hash_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 24), b""):
            h.update(block)
    return h.hexdigest()


def evaluate(
    problem: Problem,
    source: str,
    *,
    backend: str | None = None,
    size: str | None = None,
    sets: dict[str, Any] | None = None,
    sandbox: str | None = None,
    timeout_s: float | None = None,
    gate: str = "enforce",
    device: str | None = None,
) -> Verdict:
    """Evaluate one candidate source for ``problem``. Failures of the candidate are verdicts;
    only a broken problem or environment raises."""
    cfg = settings_mod.get()
    if gate not in GATE_MODES:
        raise ValueError(f"gate must be one of {GATE_MODES}")
    device = device or ("cuda" if cuda_available() else "cpu")
    plan = make_plan(problem, device=device, size=size, sets=sets)
    iso = backends.select(sandbox or cfg.sandbox)
    phases: dict[str, float] = {}
    verdict = Verdict(
        accepted=False,
        reasons=[],
        problem_id=problem.id,
        size=plan.size,
        backend=backend,
        device=_device_name(device),
        sandbox=iso.NAME,
        phases=phases,
    )

    with _timed(phases, "static"):
        result = static_gate.check_source(source, backend=backend, allow_torch=problem.allow_torch)
    verdict.backend = backend or result.backend
    if device == "cpu" and verdict.backend != "triton":
        verdict.device = "cpu"  # only Triton has an interpreter to run on
    verdict.static = [f.to_dict() for f in result.findings]
    if result.findings and gate == "enforce":
        for f in result.findings:
            where = f" (line {f.line})" if f.line else ""
            verdict.reject(f.code, f.message + where)
        return verdict

    if verdict.backend == "cuda-inline" and device != "cuda":
        # load_inline compiles against a CUDA build of torch: nothing can be built or run here.
        verdict.reject(
            reasons.NOT_RUN_NO_GPU,
            "cuda-inline candidates need a CUDA build of "
            "torch and a GPU; the static gate passed, nothing else was checked",
        )
        verdict.timing_note = "no CUDA GPU here"
        return verdict
    base = Path(tempfile.mkdtemp(prefix="kernelloop-eval-"))
    try:
        return _run(problem, source, plan, verdict, iso, base, cfg, timeout_s or cfg.timeout_s)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _run(
    problem: Problem,
    source: str,
    plan: Plan,
    verdict: Verdict,
    iso,
    base: Path,
    cfg,
    timeout_s: float,
) -> Verdict:
    phases = verdict.phases
    private, work = base / "private", base / "work"
    for d in (private / "ref", work / "inputs", work / "params", work / "out", work / "tmp"):
        d.mkdir(parents=True, mode=0o700)
    (work / "candidate.py").write_text(source)
    gpu = plan.device == "cuda"
    common = {
        "problem_path": str(problem.path),
        "dtype": problem.dtype,
        "device": plan.device,
        "variants": plan.variants,
        "init_seed": plan.init_seed,
        "allow_tf32": problem.allow_tf32,
    }

    # 2. The reference: trusted, so the plain process backend; outputs go to `private`.
    ref_job = {
        **common,
        "mode": "outputs",
        "trials": [t.to_job() for t in plan.trials],
        "inputs_dir": str(work / "inputs"),
        "params_dir": str(work / "params"),
        "ref_dir": str(private / "ref"),
    }
    with _timed(phases, "reference"):
        ref, failure = _reference_outputs(ref_job, private, gpu, timeout_s, cfg)
    if failure:
        verdict.reject(reasons.PROBLEM_ERROR, f"the reference failed: {failure}")
        return verdict
    work_estimate = ref["reference"].get("work")
    input_hashes = {t.name: _hash_file(work / "inputs" / f"{t.name}.bin") for t in plan.trials}
    # Reference outputs and the seeds in the reference job move into this process's memory and
    # leave the disk before any candidate code runs: a worker sharing our uid (the process
    # backend) could otherwise read them (threat row 14).
    references = {t.name: tensorio.read(private / "ref" / f"{t.name}.bin")[0] for t in plan.trials}
    shutil.rmtree(private)
    private.mkdir(mode=0o700)

    from . import timing_report

    order = ["reference", "candidate"]
    random.SystemRandom().shuffle(order)  # threat row 22: no fixed measurement order
    baselines = None
    if gpu and order[0] == "reference":
        baselines = timing_report.time_baselines(common, private, cfg, timeout_s)

    # 3. The candidate, inside the isolation backend.
    job = {
        "candidate": "candidate.py",
        "device": plan.device,
        "dtype": problem.dtype,
        "init_seed": plan.init_seed,
        "allow_torch": list(problem.allow_torch),
        "trials": [
            {"name": t.name, "variant": t.variant, "inputs": f"inputs/{t.name}.bin"}
            for t in plan.trials
        ],
        "repeat": plan.repeat,
        "timing": {
            "template": f"inputs/{plan.trials[0].name}.bin",
            "budget_ms": cfg.timing_budget_ms,
            "warmup_ms": cfg.warmup_ms,
        }
        if gpu
        else None,
        "drift": plan.drift,
        "limits": Limits(
            memory_bytes=None if gpu else cfg.memory_cap_bytes,
            cpu_seconds=int(timeout_s * 4) + 30,
            file_bytes=(16 << 30) if gpu else (1 << 30),
            processes=256,
        ).to_dict(),
    }
    writable, env = (), {}
    if verdict.backend == "cuda-inline":
        ext = _extension_cache(source, cfg)
        writable, env = (ext,), {"TORCH_EXTENSIONS_DIR": ext}
    with _timed(phases, "candidate"):
        outcome, frames, bad = _run_worker(
            "kernelloop.sandbox.worker",
            job,
            workdir=work,
            wrapped_by=iso,
            gpu=gpu,
            timeout_s=timeout_s,
            memory_cap=cfg.memory_cap_bytes,
            writable=writable,
            env=env,
            max_tasks=MAX_WORKER_TASKS,
        )
    verdict.worker = {
        "returncode": outcome.returncode,
        "signal": outcome.signal,
        "wall_s": round(outcome.wall_s, 3),
        "peak_rss_mb": outcome.peak_rss_bytes >> 20,
        "isolation": outcome.isolation,
        "stdout": outcome.stdout[-4000:],
        "stderr": outcome.stderr[-4000:],
        "leftovers_killed": outcome.leftovers_killed,
        "network": next((f.get("network") for _, f in frames if f["type"] == "hello"), None),
    }
    if gpu and baselines is None:
        baselines = timing_report.time_baselines(common, private, cfg, timeout_s)

    with _timed(phases, "compare"):
        checks.judge(problem, plan, verdict, frames, bad, outcome, references, work, input_hashes)
    if gpu and verdict.correctness and verdict.correctness.passed and not verdict.reasons:
        timing_report.attach(verdict, frames, baselines, work_estimate, problem.dtype)
    elif not gpu:
        verdict.timing_note = "no CUDA GPU here: correctness only, timing skipped"
    verdict.accepted = not verdict.reasons and bool(
        verdict.correctness and verdict.correctness.passed
    )
    return verdict


__all__ = ["evaluate", "Reason", "Verdict"]
