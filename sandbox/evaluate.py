"""The one evaluator: static gate, reference, candidate worker, comparison, timing, verdict.

``evaluate(problem, source)`` is the whole trust story in one function, top-down:

1. the static gate reads the source (nothing runs yet);
2. a trusted reference worker makes seeded inputs, reference outputs (kept in a private folder the
   candidate's sandbox cannot see) and the reference's parameters;
3. the candidate worker runs in an isolation backend: build, trials, a repeat, timing on a GPU,
   drift trials; it reports frames on a dedicated channel and writes outputs to files;
4. this process compares every output with the reference, checks inputs for mutation, reads the
   run-time guards' reports, and turns timings into statistics with confidence intervals;
5. everything becomes one :class:`Verdict`; an exception while judging becomes one too
   (``EVALUATOR_ERROR``), so what a candidate wrote can never crash the evaluator.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import shutil
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .. import settings as settings_mod
from ..kernelbench.problem import Problem
from . import backends, checks, interpreter, launch, reasons, spare, static_gate, tensorio
from .frames import CANDIDATE as CANDIDATE_FRAMES
from .limits import Limits
from .plan import Plan, make_plan
from .stopwatch import add as add_spans
from .stopwatch import timed
from .verdict import Reason, Verdict

GATE_MODES = ("enforce", "report")
MAX_WORKER_TASKS = 512  # processes + threads of one candidate worker (torch and Triton need ~50)
# Threat row 29: extra output bundles a trial may write besides its own, allowed for in the
# work dir's cap: the same call in reversed program order and under up to 16 autotune configs
# (sandbox/interpreter/alternates.py).
ALTERNATES_PER_TRIAL = 17


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _device_name(device: str) -> str:
    if device == "cuda":
        import torch

        return torch.cuda.get_device_name(0)
    return "cpu (Triton interpreter)"


def _extension_cache(source: str, cfg) -> str:
    """``load_inline`` builds take minutes: cache them per source hash. A candidate can only
    write into the folder of its own source, so it cannot poison another candidate's build."""
    path = cfg.cache_dir / "torch_extensions" / hashlib.sha256(source.encode()).hexdigest()[:24]
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


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
    outcome, frames, bad = launch.run_worker(
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
    warm_next: bool = False,
) -> Verdict:
    """Evaluate one candidate source for ``problem``. Failures of the candidate are verdicts;
    only a broken problem or environment raises. ``warm_next``: more evaluations like this one
    follow (a campaign), so leave a candidate worker starting up for the next."""
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
        sizes=plan.variants,
    )
    if len(plan.variants) == 1:  # a shape-specialised kernel would not be caught: say so
        verdict.notes.append(
            "no hold-out size was checked: the problem declares no HOLDOUT and none could be "
            "derived (its reference does not run on the meta device)"
        )

    with timed(phases, "static"):
        result = static_gate.check_source(source, backend=backend, allow_torch=problem.allow_torch)
    verdict.backend = backend or result.backend
    if device == "cpu" and verdict.backend != "triton":
        verdict.device = "cpu"  # only Triton has an interpreter to run on
    verdict.static = [f.to_dict() for f in result.findings]
    verdict.notes.extend(result.notes)
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
    timeout_s = timeout_s or cfg.timeout_s
    gpu = device == "cuda"
    # cuda-inline workers are started per source (their build folder); any other kind may use
    # the worker a previous evaluation left warming (sandbox/spare.py).
    reusable = verdict.backend != "cuda-inline"
    key = (iso.NAME, device, launch.assigned_gpu.get(), timeout_s, cfg.memory_cap_bytes)
    kept = spare.take(key) if reusable else None
    base = kept.base if kept else spare.make_base()
    try:
        worker = kept.worker if kept else None
        verdict = _run(problem, source, plan, verdict, iso, base, cfg, timeout_s, worker)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    if warm_next and reusable:  # only after an evaluation that ended normally (not interrupted)

        def start_next(work: Path) -> launch.WorkerRun:
            wait = _await_s(gpu, timeout_s) + spare.IDLE_S  # idle time, then an evaluation
            return _start_candidate(verdict, "", work, iso, cfg, gpu, timeout_s, await_s=wait)

        spare.leave(key, start_next)
    return verdict


def _await_s(gpu: bool, timeout_s: float) -> float:
    """How long a candidate worker started ahead of need waits for its job: as long as the
    reference (and, on a GPU, the baselines) may take."""
    return (max(timeout_s, 600) + max(timeout_s, 900) if gpu else timeout_s) + 60


def _candidate_job(problem: Problem, plan: Plan, cfg, gpu: bool) -> dict:
    return {
        "candidate": "candidate.py",
        "device": plan.device,
        "dtype": problem.dtype,
        "init_seed": plan.init_seed,
        "eval_mode": problem.eval_mode,  # ModelNew runs in the reference's mode
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
    }


def _start_candidate(
    verdict: Verdict, source: str, work: Path, iso, cfg, gpu: bool, timeout_s: float, **how
) -> launch.WorkerRun:
    """The candidate worker, inside the isolation backend. ``how``: ``job`` (the whole job, a
    plain start) or ``await_s`` (started ahead of need; its job is posted later)."""
    writable, env = (), {}
    if verdict.backend == "cuda-inline":
        ext = _extension_cache(source, cfg)
        writable, env = (ext,), {"TORCH_EXTENSIONS_DIR": ext}
    boot = {
        "limits": Limits(
            memory_bytes=None if gpu else cfg.memory_cap_bytes,
            cpu_seconds=int(timeout_s * 4) + 30,
            file_bytes=(16 << 30) if gpu else (1 << 30),
            processes=256,
        ).to_dict(),
    }
    return launch.start_worker(
        "kernelloop.sandbox.worker",
        {**boot, **how.pop("job", {})},
        workdir=work,
        wrapped_by=iso,
        gpu=gpu,
        timeout_s=timeout_s,
        memory_cap=cfg.memory_cap_bytes,
        writable=writable,
        env=env,
        max_tasks=MAX_WORKER_TASKS,
        schema=CANDIDATE_FRAMES,  # candidate code shares this worker: its frames are checked
        **how,
    )


def _disk_cap(plan: Plan, references: dict[str, list], cfg) -> int:
    """Bytes the candidate's work dir may grow by (threat row 29): one output bundle per run of
    a trial (each trial, the repeat, the drift runs after timing), each with room for
    ``ALTERNATES_PER_TRIAL`` more of its size, a quarter on top, and the configured margin for
    caches and scratch files (``KERNELLOOP_DISK_MARGIN``)."""
    runs = [t.name for t in plan.trials] + [plan.repeat]
    if plan.device == "cuda":
        runs += plan.drift
    header = 64 << 10  # a bundle's header and the file system's rounding, generously
    sizes = {n: sum(getattr(x, "nbytes", 0) for x in refs) for n, refs in references.items()}
    written = sum(sizes[n] + header for n in runs) * (1 + ALTERNATES_PER_TRIAL)
    return int(written * 1.25) + cfg.disk_margin_bytes


@contextlib.contextmanager
def _judging(verdict: Verdict) -> Iterator[None]:
    """Judging reads what the candidate's worker wrote. Whatever in it still makes our code
    raise is a defect of ours: it rejects this candidate (EVALUATOR_ERROR) instead of crashing
    the evaluator and the campaign it serves (threat row 27)."""
    try:
        yield
    except Exception as exc:
        _evaluator_error(verdict, exc)


def _evaluator_error(verdict: Verdict, exc: BaseException) -> None:
    where = traceback.extract_tb(exc.__traceback__)[-1:]
    at = f" at {where[0].filename.rsplit('/', 2)[-1]}:{where[0].lineno}" if where else ""
    verdict.reject(
        reasons.EVALUATOR_ERROR,
        f"the evaluator failed while judging ({type(exc).__name__}: {exc}){at}"[:1000]
        + "; a defect of kernelloop's, not of the candidate: the candidate is rejected so "
        "the loop goes on",
    )
    # our own traceback, for whoever fixes it (bounded: the innermost frames are kept)
    verdict.worker["evaluator_traceback"] = "".join(traceback.format_exception(exc))[-8000:]


def failed_evaluation(problem: Problem, exc: BaseException) -> Verdict:
    """The verdict for an evaluation that raised instead of returning one: a campaign records
    it for that candidate and goes on with the next."""
    verdict = Verdict(
        accepted=False,
        reasons=[],
        problem_id=problem.id,
        size="",
        backend=None,
        device="",
        sandbox="",
    )
    _evaluator_error(verdict, exc)
    return verdict


def _run(
    problem: Problem,
    source: str,
    plan: Plan,
    verdict: Verdict,
    iso,
    base: Path,
    cfg,
    timeout_s: float,
    worker: launch.WorkerRun | None = None,
) -> Verdict:
    private, work = base / "private", base / "work"
    for d in (private / "ref", work / "inputs", work / "params", work / "out", work / "tmp"):
        d.mkdir(parents=True, mode=0o700, exist_ok=True)
    (work / "candidate.py").write_text(source)
    gpu = plan.device == "cuda"
    # 3a. The candidate worker starts now (unless a previous evaluation left one warming), ahead
    # of need, so that its process start-up and `import torch` overlap the reference. It runs
    # none of the candidate's code until its job is posted, which happens only after the
    # reference outputs have left the disk (threat row 14).
    if worker is None:
        worker = _start_candidate(
            verdict, source, work, iso, cfg, gpu, timeout_s, await_s=_await_s(gpu, timeout_s)
        )
    try:
        return _reference_then_candidate(
            problem, source, plan, verdict, iso, private, work, cfg, timeout_s, worker
        )
    finally:
        worker.cancel()  # whatever ended the evaluation early: the waiting worker goes too


def _reference_then_candidate(
    problem: Problem,
    source: str,
    plan: Plan,
    verdict: Verdict,
    iso,
    private: Path,
    work: Path,
    cfg,
    timeout_s: float,
    worker: launch.WorkerRun,
) -> Verdict:
    phases = verdict.phases
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
    with timed(phases, "reference"):
        ref, failure = _reference_outputs(ref_job, private, gpu, timeout_s, cfg)
    if failure:
        verdict.reject(reasons.PROBLEM_ERROR, f"the reference failed: {failure}")
        return verdict
    work_estimate = ref["reference"].get("work")
    add_spans(verdict.phase_detail, "reference", ref["reference"].get("seconds"))
    # The trusted reference worker hashed each input bundle as it wrote it; reading gigabytes
    # back to hash them again here would only repeat that.
    written = ref["reference"].get("input_hashes") or {}
    input_hashes = {
        t.name: written.get(t.name) or tensorio.file_hash(work / "inputs" / f"{t.name}.bin")
        for t in plan.trials
    }
    # Reference outputs and the seeds in the reference job move into this process's memory and
    # leave the disk before any candidate code runs: a worker sharing our uid (the process
    # backend) could otherwise read them (threat row 14).
    references = {t.name: tensorio.read(private / "ref" / f"{t.name}.bin")[0] for t in plan.trials}
    exact = {
        t.name: tensorio.read(path)[0]
        for t in plan.trials
        if (path := private / "ref" / f"{t.name}.exact.bin").exists()
    }
    verdict.notes.extend(ref["reference"].get("exact_notes") or [])
    shutil.rmtree(private)
    private.mkdir(mode=0o700)

    from . import timing_report

    order = ["reference", "candidate"]
    random.SystemRandom().shuffle(order)  # threat row 22: no fixed measurement order
    baselines = None
    if gpu and order[0] == "reference":
        baselines = timing_report.time_baselines(
            common, private, cfg, timeout_s, gpu_name=verdict.device
        )

    # 3b. The candidate's job goes to the waiting worker: only now, with the reference outputs
    # off the disk, may candidate code load. The worker's timeout counts from here.
    job = _candidate_job(problem, plan, cfg, gpu)
    disk_cap = _disk_cap(plan, references, cfg)
    with timed(phases, "candidate"):
        if not worker.post(job, disk_cap):  # it died or overstayed while waiting: start afresh
            worker.wait()
            worker = _start_candidate(
                verdict, source, work, iso, cfg, gpu, timeout_s, job=job, disk_cap=disk_cap
            )
        outcome, frames, bad = worker.wait()
    with _judging(verdict):
        verdict.worker = {
            "returncode": outcome.returncode,
            "signal": outcome.signal,
            "wall_s": round(outcome.wall_s, 3),
            "peak_rss_mb": outcome.peak_rss_bytes >> 20,
            "disk_mb": round(outcome.peak_disk_bytes / 2**20, 1),
            "isolation": outcome.isolation,
            "stdout": outcome.stdout[-4000:],
            "stderr": outcome.stderr[-4000:],
            "leftovers_killed": outcome.leftovers_killed,
            "network": next((f.get("network") for _, f in frames if f["type"] == "hello"), None),
        }
        if gpu and baselines is None:
            baselines = timing_report.time_baselines(
                common, private, cfg, timeout_s, gpu_name=verdict.device
            )

        for _, frame in frames:  # the worker's own account of its steps (advisory, numbers)
            if frame.get("type") == "build":
                add_spans(verdict.phase_detail, "candidate", {"build": frame.get("seconds")})
            elif frame.get("type") in ("trial", "timing"):
                add_spans(verdict.phase_detail, "candidate", frame.get("spans"))
        with timed(phases, "compare"):
            checks.judge(
                problem,
                plan,
                verdict,
                frames,
                bad,
                outcome,
                references,
                work,
                input_hashes,
                exact=exact,
            )
        if gpu and verdict.correctness and verdict.correctness.passed and not verdict.reasons:
            timing_report.attach(verdict, frames, baselines, work_estimate, problem.dtype)
        elif not gpu:
            verdict.timing_note = "no CUDA GPU here: correctness only, timing skipped"
            if verdict.correctness and any(t.passed for t in verdict.correctness.trials):
                verdict.notes.append(interpreter.CPU_LIMITS)  # what the CPU run did not show
        verdict.accepted = not verdict.reasons and bool(
            verdict.correctness and verdict.correctness.passed
        )
    return verdict


__all__ = ["evaluate", "Reason", "Verdict"]
