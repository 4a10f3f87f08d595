"""Checks on what a candidate worker reported: frames, output files, guards, containment.

Everything here runs in the orchestrator, on data the worker produced; the worker itself judges
nothing. Each failure becomes a reason with a code (see ``reasons.py``) on the verdict.
"""

from __future__ import annotations

from pathlib import Path

from ..kernelbench.problem import Problem
from . import guards, reasons, tensorio
from .compare import compare
from .plan import Plan
from .stopwatch import timed
from .verdict import BuildResult, CorrectnessResult, TrialResult, Verdict


def judge(
    problem: Problem,
    plan: Plan,
    verdict: Verdict,
    frames: list[tuple[float, dict]],
    bad: str | None,
    outcome,
    references: dict[str, list],
    work: Path,
    input_hashes: dict[str, str],
) -> None:
    """Turn the candidate worker's frames and files into build and correctness results."""
    tol = problem.tolerance
    by_type: dict[str, list[dict]] = {}
    for _, f in frames:
        by_type.setdefault(f["type"], []).append(f)
    if bad:
        verdict.reject(reasons.CHANNEL_TAMPERED, f"verdict channel: {bad}")
    for kind in ("hello", "build", "timing", "launches", "done", "wall_begin", "wall_end"):
        if len(by_type.get(kind, [])) > 1:
            verdict.reject(reasons.CHANNEL_TAMPERED, f"more than one {kind!r} frame")

    build = (by_type.get("build") or [None])[0]
    if build is not None:
        verdict.build = BuildResult(
            ok=build["ok"], seconds=round(build["seconds"], 3), log=build.get("error", "")[:4000]
        )
        if not build["ok"]:
            code = reasons.BUILD_FAILED if build.get("kind") == "build" else reasons.IMPORT_FAILED
            if build.get("kind") == "memory":
                code = reasons.MEMORY_LIMIT
            verdict.reject(code, build.get("error", "the candidate failed to load"))
        elif build.get("inherits_reference"):
            verdict.reject(reasons.INHERITS_REFERENCE, "ModelNew derives from a class named Model")

    _containment(verdict, outcome, by_type)
    _launch_records(verdict, by_type.get("launches"))
    trials = CorrectnessResult(passed=False, tolerance=dict(tol))
    verdict.correctness = trials
    first_outputs: dict[str, list] = {}
    expected = [t.name for t in plan.trials] + [f"{plan.repeat}.repeat"]
    if by_type.get("timing") or by_type.get("wall_begin"):
        expected += [f"{n}.drift" for n in plan.drift]
    seen = [f["name"] for f in by_type.get("trial", [])]
    if seen != expected[: len(seen)]:
        verdict.reject(reasons.CHANNEL_TAMPERED, "trial frames out of order or unexpected")
        return
    for frame in by_type.get("trial", []):
        name = frame["name"]
        base = name.split(".")[0]
        result = TrialResult(name=name, passed=False)
        trials.trials.append(result)
        if not frame["ok"]:
            result.message = frame.get("error", "")[:2000]
            _reject_trial_error(verdict, frame)
            continue
        detail = verdict.phase_detail
        # One read: the hash is of the very bytes compared below, so a file rewritten after
        # its frame (by a process or thread the candidate left running) is caught, not compared.
        with timed(detail, "compare.read"):
            try:
                outputs, _, digest = tensorio.read_hashed(work / frame["output"])
            except (tensorio.BundleError, OSError, TypeError):
                digest = None  # unreadable or malformed: not what the worker wrote
        if digest is None or frame.get("output_sha256") != digest:
            verdict.reject(
                reasons.CHANNEL_TAMPERED,
                f"trial {name}: the output file changed after the trial reported it",
            )
            continue
        refs = references[base]
        _guard_reports(verdict, frame, plan.device)
        # Inputs after the call must hash like the bundle the reference worker wrote before the
        # candidate started (threat row 2); the bundle file itself is checked here too.
        if frame.get("inputs_sha256") != input_hashes[base]:
            verdict.reject(reasons.INPUT_MUTATED, f"trial {name}: forward wrote into its inputs")
        if len(outputs) != len(refs):
            result.message = f"{len(outputs)} outputs, expected {len(refs)}"
            verdict.reject(reasons.WRONG_OUTPUT, f"trial {name}: {result.message}")
            continue
        devices = frame.get("devices", [])
        if any(d != plan.device for d in devices):
            verdict.reject(reasons.WRONG_DEVICE, f"trial {name}: outputs on {devices}")
        ok = True
        for i, (out, ref) in enumerate(zip(outputs, refs, strict=True)):
            with timed(detail, "compare.values"):
                cmp = compare(out, ref, atol=tol["atol"], rtol=tol["rtol"], device=plan.device)
            result.max_abs_err = max(result.max_abs_err or 0.0, cmp.max_abs_err or 0.0)
            result.max_rel_err = max(result.max_rel_err or 0.0, cmp.max_rel_err or 0.0)
            result.mismatched += cmp.mismatched
            result.numel += cmp.numel
            if not cmp.passed:
                ok = False
                result.message = f"output {i}: {cmp.message}"
                code = reasons.DRIFT if name.endswith(".drift") else cmp.code
                verdict.reject(code, f"trial {name}: {result.message}")
        result.passed = ok
        if name.endswith(".repeat"):
            with timed(detail, "compare.repeat"):
                _check_repeat(verdict, outputs, first_outputs.get(base), tol, plan.device)
        else:
            first_outputs.setdefault(base, outputs)
    ran = {t.name for t in trials.trials}
    missing = [n for n in expected if n not in ran]
    if missing and not verdict.reasons:
        verdict.reject(reasons.CRASHED, f"the worker stopped before trial {missing[0]}")
    trials.checks = {
        "deterministic": reasons.NONDETERMINISTIC not in verdict.codes
        and f"{plan.repeat}.repeat" in ran,
        "inputs_untouched": reasons.INPUT_MUTATED not in verdict.codes,
        "no_drift": reasons.DRIFT not in verdict.codes,
    }
    trials.passed = bool(trials.trials) and all(t.passed for t in trials.trials) and not missing


def _launch_records(verdict: Verdict, frames: list[dict] | None) -> None:
    """Keep the interpreted launches the worker reported, if they have the expected shape:
    feedback for a static compile, never evidence (the candidate could have written them)."""
    kernels = (frames or [{}])[0].get("kernels")
    if not isinstance(kernels, list):
        return
    verdict.launches = [
        {"kernel": k["kernel"], "args": k["args"], "unsupported": str(k.get("unsupported", ""))}
        for k in kernels[: guards.MAX_LAUNCH_RECORDS]
        if isinstance(k, dict)
        and isinstance(k.get("kernel"), str)
        and isinstance(k.get("args"), dict)
    ]


def _reject_trial_error(verdict: Verdict, frame: dict) -> None:
    kind, stage = frame.get("kind"), frame.get("stage")
    msg = f"trial {frame['name']}: {frame.get('error', '')}"
    if kind == "no_gpu":
        verdict.reject(
            reasons.NOT_RUN_NO_GPU,
            "the CUDA kernel compiled, but there is no GPU "
            "here to run it; correctness and timing need a CUDA machine",
        )
    elif kind == "memory":
        verdict.reject(reasons.MEMORY_LIMIT, msg)
    elif kind == "not_tensor":
        verdict.reject(reasons.OUTPUT_NOT_TENSOR, msg)
    elif stage == "init":
        verdict.reject(reasons.INIT_FAILED, msg)
    elif kind == "build":
        verdict.reject(reasons.BUILD_FAILED, msg)
    else:
        verdict.reject(reasons.RUNTIME_ERROR, msg)


def _guard_reports(verdict: Verdict, frame: dict, device: str) -> None:
    name = frame["name"]
    if frame.get("launches", 0) <= 0:
        verdict.reject(reasons.NO_KERNEL_LAUNCHED, f"trial {name}: forward launched no kernel")
    if frame.get("torch_ops"):
        ops = ", ".join(frame["torch_ops"][:10])
        verdict.reject(
            reasons.TORCH_OP_CALLED,
            f"forward ran torch compute ops: {ops} "
            "(allowed: allocation, views, copies, and the problem's ALLOW_TORCH)",
        )
    if frame.get("threads_delta", 0) > 0:
        verdict.reject(
            reasons.THREAD_LEAK,
            f"trial {name}: {frame['threads_delta']} thread(s) the candidate started are running",
        )
    if frame.get("patched"):
        verdict.reject(reasons.FUNCTION_PATCHED, f"replaced: {', '.join(frame['patched'])}")


def _check_repeat(
    verdict: Verdict, again: list, first: list | None, tol: dict, device: str
) -> None:
    if first is None:
        return
    # Two runs on identical inputs must agree far more closely than the tolerance allows the
    # candidate to differ from the reference: disagreement means reads of garbage (row 17).
    for a, b in zip(again, first, strict=False):
        cmp = compare(a, b, atol=tol["atol"] / 10, rtol=tol["rtol"] / 10, device=device)
        if not cmp.passed:
            verdict.reject(
                reasons.NONDETERMINISTIC, f"two runs on the same inputs differ: {cmp.message}"
            )
            return


def _containment(verdict: Verdict, outcome, by_type: dict[str, list[dict]]) -> None:
    if outcome.timed_out:
        verdict.reject(
            reasons.TIMEOUT,
            f"the worker exceeded {outcome.wall_s:.0f} s and was killed with everything it started",
        )
    elif outcome.memory_exceeded:
        verdict.reject(
            reasons.MEMORY_LIMIT,
            f"resident memory passed the cap "
            f"({outcome.peak_rss_bytes >> 20} MiB); the worker was killed",
        )
    elif outcome.signal and "done" not in by_type:
        sig = outcome.signal
        code = reasons.MEMORY_LIMIT if sig == "SIGXFSZ" else reasons.CRASHED
        verdict.reject(code, f"the worker died on {sig}")
    elif "error" in by_type:
        verdict.reject(reasons.WORKER_ERROR, by_type["error"][0].get("message", "")[:2000])
    elif "done" not in by_type and outcome.returncode != 0:
        tail = outcome.stderr.strip().splitlines()[-1:] or ["no output"]
        verdict.reject(
            reasons.CRASHED, f"the worker exited with status {outcome.returncode}: {tail[0][:300]}"
        )
