"""The candidate worker: the only process in which candidate code ever runs.

``python -m kernelloop.sandbox.worker JOB.json``, spawned fresh for each candidate inside an
isolation backend, usually ahead of need: then JOB.json holds only the boot settings, and the job
itself is awaited after the imports (``sandbox/launch.py``). The story, top-down: limit
ourselves, capture timers and install guards, load the candidate (the "build"), run every trial
on inputs the orchestrator prepared and write the outputs to files, time it if there is a GPU,
re-run some trials after timing (drift), and report each step as a frame on the channel. The
worker never holds a reference output or a seed, and it judges nothing: comparison happens in the
orchestrator.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import random
import secrets
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from . import candidate_module, channel, interpreter, limits
from .stopwatch import timed

_MAX_ERROR = 4000
# Taken when the worker module loads, before any candidate code: a candidate that patches
# time.perf_counter must not skew the seconds the worker reports (the frames reject a negative
# duration as tampering, which would hide the FUNCTION_PATCHED verdict the guards give).
_clock = time.perf_counter


def _clean_error(exc: BaseException) -> str:
    """The candidate's part of a traceback, without the worker's frames, bounded."""
    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if os.path.basename(f.filename) == "candidate.py"]
    lines = [f"  line {f.lineno}, in {f.name}: {f.line}" for f in own[-5:]]
    text = f"{type(exc).__name__}: {exc}"
    if lines:
        text = "\n".join(["candidate traceback (most recent call last):", *lines, text])
    return text[:_MAX_ERROR]


def _nvml_sampler():
    """(NvmlSampler, None) on a GPU NVML can read, else (None, why not); never raises."""
    try:
        from ..feedback.nvml import sampler_for_cuda_device

        return sampler_for_cuda_device(interval_s=0.02)
    except Exception as exc:
        return None, f"NVML sampling could not start: {type(exc).__name__}: {exc}"[:300]


def _error_kind(exc: BaseException) -> str:
    name = type(exc).__name__
    text = str(exc).lower()
    if isinstance(exc, MemoryError) or "can't allocate memory" in text or "out of memory" in text:
        return "memory"
    if name == "CudaUnavailableError":
        return "no_gpu"
    if name in {"CudaCompileError", "CompilationError", "CompileError"}:
        return "build"
    if interpreter.unsupported_reason(exc):  # inline PTX and the like: inconclusive, not wrong
        return "interpreter_unsupported"
    return "runtime"


def _mib(nbytes: int) -> str:
    return f"{nbytes / 2**20:,.1f} MiB"


class Worker:
    def __init__(self, job: dict[str, Any]):
        self.job = job
        self.out = channel.Writer(job["channel_fd"])
        self.device = job["device"]
        self.work = Path.cwd()
        import torch

        from .guards import Guards, allowed_ops
        from .timing import Clock

        self.torch = torch
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        from . import tensorio

        # Captured before the candidate exists, like the guards' identities and launch counters.
        self._write, self._digest = tensorio.write, tensorio.digest
        # The interpreter's CPU shims go in before the guards, which wrap and watch what they set.
        self.interpreted = self.device == "cpu" and interpreter.interpreted()
        if self.interpreted:
            interpreter.install()
        self.guards = Guards()
        # Our own methods join the guards' tripwire (row 24); under `python -m` this module is
        # __main__, so by class rather than by module name.
        self.guards.tripwire.watch_code_of(Worker)
        self.clock = Clock.capture() if self.device == "cuda" else None
        self.allowed = allowed_ops(job.get("allow_torch", ()))
        self.models: dict[str, Any] = {}
        self.cls: type | None = None
        self.network = "sandbox"  # how the network was isolated; set by main()
        self._forward_s = 1.0  # the last call's seconds: the extra runs' budget before a call
        self._alternates_first: set[str] = set()  # trials whose extra runs precede their call

    # --- build ----
    def load_candidate(self) -> None:
        self.cls = candidate_module.load(self.work / self.job["candidate"])

    def inherited_reference(self) -> bool:
        # Threat row 11 at run time: the reference class is not in this process, so a class
        # called Model anywhere in ModelNew's ancestry means a copy of it was smuggled in.
        return any(base.__name__ == "Model" for base in self.cls.__mro__[1:])

    def model_for(self, variant: str):
        if variant not in self.models:
            self.models[variant] = self.new_model(variant)
        return self.models[variant]

    def new_model(self, variant: str):
        """``ModelNew`` built as the reference was, holding the reference's parameter values."""
        from . import tensorio

        tensors, meta = tensorio.read(self.work / "params" / f"{variant}.bin")
        self.torch.manual_seed(self.job["init_seed"])
        model = self.cls(*meta["init_inputs"])
        if isinstance(model, self.torch.nn.Module):
            # Like the reference: cast to the problem's dtype, then take its exact values.
            dtype = getattr(self.torch, self.job.get("dtype", "float32"))
            model = model.to(device=self.device, dtype=dtype)
            own = model.state_dict()
            state = {
                n: t
                for n, t in zip(meta["names"], tensors, strict=True)
                if n in own and own[n].shape == t.shape
            }
            model.load_state_dict(state, strict=False)  # the reference's parameter values
            model.train(not self.job.get("eval_mode", False))
        return model

    def digest(self, items: list[Any]) -> str:
        # Hash of the inputs as they are after the call, in the bundle encoding the reference
        # worker used, so the orchestrator can compare it with its own hash (threat row 2).
        return self._digest(items)

    # --- one call ----
    def run_trial(self, trial: dict[str, Any], label: str) -> None:
        from . import tensorio

        torch = self.torch
        spans: dict[str, float] = {}
        with timed(spans, "load"):
            inputs, _ = tensorio.read(self.work / trial["inputs"])
            inputs = [t.to(self.device) if isinstance(t, torch.Tensor) else t for t in inputs]
        report: dict[str, Any] = {"name": label, "spans": spans}
        try:
            model = self.model_for(trial["variant"])
        except Exception as exc:
            self.out.send(
                "trial",
                **report,
                ok=False,
                stage="init",
                kind=_error_kind(exc),
                error=_clean_error(exc),
            )
            return
        # The trial's extra runs (other program order, each autotune config) go before its own
        # call for a secret half of the trials, after it for the rest, on a model of their own:
        # a candidate that computes once and replays later (every second call, or any call on
        # inputs it saw) must pass the reversed-order run itself on some trial.
        done = None
        if self.interpreted and label in self._alternates_first:
            with timed(spans, "alternates"):
                done = self._alternates(inputs, trial, self._forward_s)
            if done is None:
                self._too_large(report, inputs)
                return
            if done.failure:
                self.out.send("trial", **report, ok=False, stage="alternate", **done.failure)
                return
        launches, threads = self.guards.launches(), self.guards.threads_started()
        if self.interpreted:
            interpreter.autotune.SEEN.clear()  # the autotuners this call runs, for labels
        try:
            with timed(spans, "forward"):
                out, torch_ops, coverage = self._forward(model, inputs)
        except BaseException as exc:  # SystemExit from a candidate is an error too
            self.out.send(
                "trial",
                **report,
                ok=False,
                stage="forward",
                kind=_error_kind(exc),
                error=_clean_error(exc),
            )
            return
        launched = self.guards.launches() - launches  # by this call, not its extra runs
        self._forward_s = spans["forward"]
        outputs = list(out) if isinstance(out, tuple | list) else [out]
        bad = [type(o).__name__ for o in outputs if type(o) is not torch.Tensor]
        if bad:
            self.out.send(
                "trial",
                **report,
                ok=False,
                stage="output",
                kind="not_tensor",
                error=f"forward returned {', '.join(bad)}, not exactly torch.Tensor",
            )
            return
        out_file = f"out/{label}.bin"
        # The hash of what was written, so that a file rewritten after this frame (by a process
        # or thread the candidate left running) is caught rather than compared.
        try:
            with timed(spans, "write"):
                written = self._write(self.work / out_file, outputs)
        except OSError as exc:
            if exc.errno != errno.EFBIG:
                raise
            self._too_large(report, outputs)
            return
        extra: dict[str, Any] = {}
        if self.interpreted:
            extra["store_coverage"] = coverage
            if label == trial["name"] and done is None:  # not a .repeat or .drift re-run
                with timed(spans, "alternates"):
                    done = self._alternates(inputs, trial, spans["forward"])
                if done is None:
                    self._too_large(report, outputs)
                    return
                if done.failure:
                    self.out.send("trial", **report, ok=False, stage="alternate", **done.failure)
                    return
            if done is not None:
                torch_ops += [op for op in done.torch_ops if op not in torch_ops]
                coverage["untracked"] = (coverage["untracked"] + done.untracked)[:64]
                if done.unchecked and coverage["checked"]:  # judged as the call's own would be
                    coverage.update(checked=False, note=done.unchecked[:500])
                extra.update(alternates=done.records, notes=done.notes[:32])
        with timed(spans, "hash_inputs"):
            inputs_sha256 = self.digest(inputs)
        self.out.send(
            "trial",
            **report,
            ok=True,
            output=out_file,
            output_sha256=written,
            inputs_sha256=inputs_sha256,
            devices=[str(o.device.type) for o in outputs],
            launches=launched,
            threads_delta=self.guards.new_threads(),
            threads_started=self.guards.threads_started() - threads,  # joined or not (row 25)
            torch_ops=torch_ops,
            patched=self.guards.patched(),
            guards_changed=self.guards.changed(),  # the tripwire on our own code (row 24)
            **extra,
        )

    def _forward(self, model, inputs: list) -> tuple[Any, list[str], dict | None]:
        """One call as the judge needs it: (what forward returned, the aten ops it ran beyond
        the allowed ones, and under the interpreter its store coverage)."""
        torch = self.torch
        tracing = contextlib.nullcontext()
        if self.interpreted:  # threat row 26: every output byte traced to its writer
            tracing = interpreter.coverage.tracking(self.allowed, model, inputs)
        try:
            # Fresh allocations are NaN-filled while the candidate runs (threat row 1): an output
            # buffer it never writes cannot inherit someone else's right answer.
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.utils.deterministic.fill_uninitialized_memory = True
            with torch.no_grad(), self.guards.recording_ops(self.allowed) as ops, tracing as tracer:
                out = model(*inputs)
                if self.device == "cuda":
                    torch.cuda.synchronize()  # surfaces asynchronous CUDA errors (row 17)
        finally:
            torch.use_deterministic_algorithms(False)
        outputs = list(out) if isinstance(out, tuple | list) else [out]
        exact = all(type(o) is torch.Tensor for o in outputs)
        return out, list(ops.disallowed), tracer.report(outputs) if tracer and exact else None

    def _alternates(self, inputs: list, trial: dict, forward_s: float):
        """The trial's call again in the other program order and with each autotune config
        (``interpreter/alternates.py``), each on fresh copies of its inputs, by a model built
        afresh (state the trial's own call left on its model cannot answer for them)."""
        from .interpreter import alternates

        model = self.new_model(trial["variant"])

        def call():
            return self._forward(model, [t.clone() if hasattr(t, "clone") else t for t in inputs])

        def write(path: str, outputs: list) -> str:
            return self._write(self.work / path, outputs)

        first = trial["name"] == self.job["trials"][0]["name"]
        try:
            return alternates.run(
                call, write, _clean_error, trial=trial, first=first, forward_s=forward_s
            )
        except OSError as exc:  # None: the outputs pass the file-size cap (the caller says so)
            if exc.errno != errno.EFBIG:
                raise
            return None

    def _too_large(self, report: dict, tensors: list) -> None:
        cap = self.job["limits"]["file_bytes"]
        size = sum(t.numel() * t.element_size() for t in tensors if hasattr(t, "numel"))
        self.out.send(
            "trial",
            **report,
            ok=False,
            stage="output",
            kind="memory",
            error=f"the outputs (about {_mib(size)}) pass this worker's file-size cap "
            f"({_mib(cap)}; a CPU worker's is smaller than a GPU worker's): "
            "evaluate this size on a GPU, or a smaller size here",
        )

    # --- timing (GPU only) ----
    def run_timing(self, spec: dict[str, Any]) -> None:
        from . import tensorio, timing

        torch = self.torch
        started = _clock()
        templates, _ = tensorio.read(self.work / spec["template"])
        templates = [t.to("cuda") if isinstance(t, torch.Tensor) else t for t in templates]
        model = self.model_for("main")
        # Drawn here and now, after the candidate loaded: it cannot know the timing inputs'
        # scale factors in advance and precompute their outputs (threat rows 7 and 21).
        gen = torch.Generator().manual_seed(secrets.randbits(63))
        flusher = timing.L2Flusher(torch.device("cuda"))
        sampler, nvml_unavailable = _nvml_sampler()
        with torch.no_grad():
            # Clocks, power and throttling while the timed calls run: advisory, for the notes.
            with sampler or contextlib.nullcontext():
                times = timing.benchmark(
                    model,
                    lambda: timing.fresh_inputs(templates, gen),
                    clock=self.clock,
                    flusher=flusher,
                    budget_ms=spec["budget_ms"],
                    warmup_ms=spec["warmup_ms"],
                )
            # Wall-clock cross-check: the orchestrator stamps these two frames on arrival.
            median = sorted(times)[len(times) // 2]
            n = int(min(500, max(5, 100.0 / max(median, 1e-3))))  # about 100 ms of calls
            batches = [timing.fresh_inputs(templates, gen) for _ in range(min(n, 4))]
            self.clock.synchronize()
            self.out.send("wall_begin", calls=n)
            for i in range(n):
                model(*batches[i % len(batches)])
            self.clock.synchronize()
            self.out.send("wall_end", calls=n)
        self.out.send(
            "timing",
            times_ms=times,
            flush_bytes=flusher.nbytes,
            persisting_l2_reset=flusher.persisting_reset,
            patched=self.guards.patched(),
            # the timed window also flushed L2 and scaled inputs: power x median time per call
            nvml=sampler.report(seconds_per_call=median / 1e3).to_dict() if sampler else None,
            nvml_unavailable=nvml_unavailable,
            kernels=self.guards.kernel_resources(),
            spans={"timing": round(_clock() - started, 4)},
        )

    # --- the whole job ----
    def run(self) -> None:
        job = self.job
        self.out.send("hello", pid=os.getpid(), device=self.device, network=self.network)
        started = _clock()
        try:
            self.load_candidate()
            self.model_for("main")
        except BaseException as exc:
            self.out.send(
                "build",
                ok=False,
                kind=_error_kind(exc),
                error=_clean_error(exc),
                seconds=_clock() - started,
            )
            return
        self.out.send(
            "build",
            ok=True,
            seconds=_clock() - started,
            inherits_reference=self.inherited_reference(),
        )
        trials = {t["name"]: t for t in job["trials"]}
        names = list(trials)
        self._alternates_first = set(random.SystemRandom().sample(names, (len(names) + 1) // 2))
        for trial in job["trials"]:
            self.run_trial(trial, trial["name"])
        if job.get("repeat"):
            self.run_trial(trials[job["repeat"]], job["repeat"] + ".repeat")
        recorded = self.guards.interpreted_launches()
        if recorded:  # under the interpreter: what a compile for a GPU target needs (advisory)
            self.out.send("launches", kernels=recorded)
        if job.get("timing"):
            self.run_timing(job["timing"])
            for name in job.get("drift", []):
                self.run_trial(trials[name], name + ".drift")


def _warm_up() -> None:
    """What every job needs, imported while the orchestrator still computes the reference."""
    import hashlib  # noqa: F401

    import torch  # noqa: F401

    from . import guards, tensorio, timing  # noqa: F401

    # The first switch into deterministic mode imports torch._dynamo (about 1 s on a 2-core
    # machine): pay for it while waiting, not inside the first trial.
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.use_deterministic_algorithms(False)

    try:  # what a Triton candidate imports first (guards import triton.runtime.jit anyway)
        import triton  # noqa: F401
        import triton.language  # noqa: F401
    except ImportError:
        pass


def _await_job(path: Path, wait_s: float, channel_fd: int) -> dict[str, Any] | None:
    """The job the orchestrator posts (atomically, by rename) once the reference outputs have
    left the disk; None when none came in time or the orchestrator is gone (our channel's read
    end closed), so a worker started ahead of need never lingers."""
    import select

    poller = select.poll()
    poller.register(channel_fd, 0)  # errors and hang-ups are reported whatever the mask
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            job = json.loads(path.read_text())
        except FileNotFoundError:
            if poller.poll(0):
                return None
            time.sleep(0.005)
            continue
        return job
    return None


def main(argv: list[str]) -> int:
    job = json.loads(Path(argv[1]).read_text())
    if "channel_path" in job:  # a container's FIFO channel, opened before any candidate code
        job["channel_fd"] = channel.open_fifo_writer(job["channel_path"])
    # Before anything else: no threads exist yet (unshare needs that) and no candidate code.
    network = limits.isolate_network() if job.get("isolate_network") else "sandbox"
    limits.apply(limits.Limits(**job["limits"]))
    if "await_job" in job:  # started ahead of need (sandbox/launch.py): boot settings only
        _warm_up()
        posted = _await_job(Path(job["await_job"]), job["await_s"], job["channel_fd"])
        if posted is None:
            print("worker: no job was posted; exiting", file=sys.stderr)
            return 3
        job = {**posted, **job}  # the boot settings (channel, limits) stay as they were applied
    worker = Worker(job)
    worker.network = network
    try:
        worker.run()
    except Exception as exc:  # our own failure, not the candidate's: say so distinctly
        worker.out.send("error", message=_clean_error(exc), trace=traceback.format_exc()[-4000:])
        return 1
    worker.out.send("done")
    return 0


if __name__ == "__main__":
    status = main(sys.argv)
    # Leave without interpreter teardown: with torch loaded it costs ~0.3 s on the critical
    # path, and no code of the candidate's (atexit hooks, finalizers) runs after its last frame,
    # e.g. to rewrite output files the orchestrator reads once the worker is gone.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
