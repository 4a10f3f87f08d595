"""Checks on what a candidate worker reported: frames, output files, guards, containment.

Everything here runs in the orchestrator, on data the worker produced; the worker itself judges
nothing. Each failure becomes a reason with a code (see ``reasons.py``) on the verdict. Frames
arrive here checked against ``frames.CANDIDATE`` (their keys exist, with bounded values of the
right types); the files they name are checked here, since the candidate may have replaced them.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import torch

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
    exact: dict[str, list] | None = None,
) -> None:
    """Turn the candidate worker's frames and files into build and correctness results.
    ``exact`` holds a half-precision problem's float64 references by trial (``compare.py``)."""
    tol = problem.tolerance
    exact = exact or {}
    exact_only = 0
    by_type: dict[str, list[dict]] = {}
    for _, f in frames:
        by_type.setdefault(f["type"], []).append(f)
    if bad:
        # Threat row 27: the stream ended at its first bad frame (and the worker was stopped
        # there), so nothing it says is complete enough to judge; only our watchdog's findings
        # (its timeout, memory and disk caps) are worth adding.
        verdict.reject(reasons.CHANNEL_TAMPERED, f"verdict channel: {bad}")
        verdict.correctness = CorrectnessResult(passed=False, tolerance=dict(tol))
        _watchdog(verdict, outcome)
        return
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
            elif build.get("kind") == "interpreter_unsupported":  # inconclusive, as in trials
                code = reasons.INTERPRETER_UNSUPPORTED
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
            outputs, digest = _read_output(work, frame["output"])
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
        wide = exact.get(base) or [None] * len(refs)
        for i, (out, ref) in enumerate(zip(outputs, refs, strict=True)):
            with timed(detail, "compare.values"):
                cmp = compare(
                    out, ref, atol=tol["atol"], rtol=tol["rtol"], device=plan.device, exact=wide[i]
                )
            exact_only += cmp.exact_only
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
        if plan.device == "cpu":
            with timed(detail, "compare.cpu_runs"):
                _check_cpu_runs(verdict, frame, result, work, outputs, refs, tol, wide)
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
    if plan.device == "cpu":  # what the interpreter's extra runs and store tracing found
        trials.checks.update(
            program_orders=reasons.PROGRAM_ORDER_DEPENDENT not in verdict.codes,
            autotune_configs=reasons.AUTOTUNE_CONFIG_WRONG not in verdict.codes,
            store_coverage=reasons.NOT_WRITTEN_BY_KERNEL not in verdict.codes,
        )
    trials.passed = bool(trials.trials) and all(t.passed for t in trials.trials) and not missing
    if exact_only:
        verdict.notes.append(
            f"{exact_only} output elements were outside the tolerance of the {problem.dtype} "
            "reference but within the tolerance of the same reference computed in float64, or "
            "within its own rounding noise (cancellation in a chain of ops)"
        )


def _read_output(work: Path, name: str) -> tuple[list, str | None]:
    """The tensors of an output bundle and the hash of the bytes read; no hash when the file is
    unreadable, malformed, not a plain file, or holds anything but tensors (the worker writes
    only tensors: other items mean the candidate wrote the file, and compare would choke)."""
    try:
        outputs, _, digest = tensorio.read_hashed(_output_file(work, name))
    except (tensorio.BundleError, OSError, TypeError, ValueError):
        return [], None
    if not all(type(o) is torch.Tensor for o in outputs):
        return [], None
    return outputs, digest


def _output_file(work: Path, name: str) -> Path:
    """The file a trial frame names (``out/<name>.bin``, by the frame schema), if it is a plain
    file in a real ``out`` folder. The candidate may have left a symlink there (to make this
    process read a host file) or a FIFO (to make its open block forever); its processes are all
    gone by now, so what ``lstat`` sees is what would be read."""
    path = work / name
    if not stat.S_ISDIR(os.lstat(work / "out").st_mode):
        raise OSError(f"{work / 'out'} is not a folder")
    if not stat.S_ISREG(os.lstat(path).st_mode):
        raise OSError(f"{path} is not a plain file")
    return path


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
    elif kind == "interpreter_unsupported":
        # Inconclusive like NOT_RUN_NO_GPU: nothing was shown wrong, nothing was verified.
        why = (frame.get("error", "").strip().splitlines() or ["?"])[-1][:500]
        verdict.reject(
            reasons.INTERPRETER_UNSUPPORTED,
            f"not verified on CPU: the Triton interpreter cannot run this kernel ({why}); "
            "evaluate it on a GPU",
        )
    elif kind in _ALTERNATE_FAILURES:  # a reversed-order or config run raised (before or after)
        code, why = _ALTERNATE_FAILURES[kind]
        verdict.reject(code, f"{msg}; {why}")
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


# Threat rows 30 and 31: the worker's extra runs of a trial (sandbox/interpreter/alternates.py),
# by label prefix, and by the kind a failed run reports.
_ORDER_WHY = (
    "the kernel depends on the order its programs run in (programs that pass data through "
    "global memory race on a GPU, where any order is possible): make each program's result "
    "independent of the others', or pass data between passes with separate launches or atomics"
)
_CONFIG_WHY = "a GPU autotuner may pick this config: fix it, or prune it for such shapes"
_ALTERNATE_CODES = {
    "order:": (reasons.PROGRAM_ORDER_DEPENDENT, _ORDER_WHY),
    "autotune:": (reasons.AUTOTUNE_CONFIG_WRONG, _CONFIG_WHY),
}
_ALTERNATE_FAILURES = {
    "program_order": (reasons.PROGRAM_ORDER_DEPENDENT, _ORDER_WHY),
    "autotune_config": (reasons.AUTOTUNE_CONFIG_WRONG, _CONFIG_WHY),
}


def _check_cpu_runs(
    verdict: Verdict,
    frame: dict,
    result: TrialResult,
    work: Path,
    outputs: list,
    refs: list,
    tol: dict,
    wide: list | None = None,
) -> None:
    """On a CPU worker (the Triton interpreter): each of the trial's extra runs is read like its
    main output and compared with the same reference (rows 30, 31), and its store coverage must
    show every output byte written by the candidate's kernels or an allowed op (row 26). The
    worker always sends both: a trial that lacks them is not believed. ``wide``: the float64
    twin's outputs of a half-precision problem, where there is one."""
    wide = wide or [None] * len(refs)
    name = frame["name"]
    alternates = frame.get("alternates", [])
    coverage = frame.get("store_coverage")
    if coverage is None or ("." not in name and not alternates):
        verdict.reject(
            reasons.CHANNEL_TAMPERED, f"trial {name}: the interpreter's extra checks are missing"
        )
    for alt in alternates:
        label = alt["label"]
        code_why = next((c for p, c in _ALTERNATE_CODES.items() if label.startswith(p)), None)
        others, digest = _read_output(work, alt["output"])
        if code_why is None or digest is None or alt["output_sha256"] != digest:
            verdict.reject(
                reasons.CHANNEL_TAMPERED,
                f"trial {name}, {label[:80]}: unknown, or changed after the trial reported it",
            )
            continue
        problem = "" if len(others) == len(refs) else f"{len(others)} outputs, not {len(refs)}"
        for i, (out, ref) in enumerate(zip(others, refs, strict=False)):
            cmp = compare(out, ref, atol=tol["atol"], rtol=tol["rtol"], device="cpu", exact=wide[i])
            if not problem and not cmp.passed:
                problem = f"output {i}: {cmp.message}"
        if problem and result.passed:  # wrong in every run is wrong, not order-dependent
            code, why = code_why
            result.passed = False
            result.message = f"{label}: {problem}"[:2000]
            verdict.reject(code, f"trial {name}, {label}: {problem}; {why}")
    for u in (coverage or {}).get("untracked", []):
        verdict.reject(
            reasons.NOT_WRITTEN_BY_KERNEL,
            f"trial {name} ({u['run']}): {u['elements']} of {u['numel']} elements of output "
            f"{u['output']} hold values no kernel of the candidate's stored and no allowed torch "
            "op (allocation, fill, copy, cast) wrote: host code produced them another way "
            "(raw memory through data_ptr, ctypes, numpy); compute outputs in Triton kernels",
        )
    from .interpreter.coverage import MAX_OUTPUT_BYTES

    size = sum(o.numel() * o.element_size() for o in outputs)
    if coverage and not coverage["checked"] and size <= MAX_OUTPUT_BYTES:
        # Outputs this small are always checked: not checking them is our defect (or a worker
        # that cannot be believed), never a pass.
        verdict.reject(
            reasons.EVALUATOR_ERROR, f"trial {name}: store coverage failed: {coverage['note']}"
        )
    elif coverage and not coverage["checked"]:
        _note(verdict, f"trial {name}: store coverage not checked: {coverage['note']}")
    for note in frame.get("notes", []):
        _note(verdict, note)


def _note(verdict: Verdict, text: str) -> None:
    if text not in verdict.notes:
        verdict.notes.append(text)


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
    if frame.get("threads_started", 0) > 0 and reasons.THREAD_STARTED not in verdict.codes:
        # Row 25: work on another thread, even one joined before returning, is invisible to
        # the op recorder (thread-local) and the profiler (it follows the calling thread).
        # Said once, for the first trial: every trial would say the same.
        verdict.reject(
            reasons.THREAD_STARTED,
            f"trial {name}: forward started {frame['threads_started']} Python thread(s) "
            "(joined or not); compute in the calling thread, inside your kernels",
        )
    if frame.get("guards_changed"):
        # Row 24: the evaluator's own code was replaced while the candidate ran.
        names = frame["guards_changed"]
        verdict.reject(
            reasons.GUARD_TAMPERED,
            f"the evaluator's guards were changed: {', '.join(names[:10])}"
            + (f" and {len(names) - 10} more" if len(names) > 10 else ""),
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


def _watchdog(verdict: Verdict, outcome) -> bool:
    """What the orchestrator's watchdog saw (trusted, unlike frames); True if it acted."""
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
    elif outcome.disk_exceeded:  # threat row 29
        verdict.reject(
            reasons.DISK_LIMIT,
            f"{outcome.disk_exceeded}: the cap is what this evaluation's outputs need (with "
            "room for extra ones) plus a margin for caches (KERNELLOOP_DISK_MARGIN); write "
            "nothing else to disk",
        )
    else:
        return False
    return True


def _containment(verdict: Verdict, outcome, by_type: dict[str, list[dict]]) -> None:
    if _watchdog(verdict, outcome):
        return
    if outcome.signal and "done" not in by_type:
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
