"""The reference worker: trusted code, in its own process, never next to a candidate.

``python -m kernelloop.sandbox.reference JOB.json`` with the channel on the descriptor named in
the job. Two modes:

- ``outputs``: for every trial, make the seeded inputs (written into the candidate's work dir) and
  the reference outputs (written into the orchestrator's private dir, which the candidate's
  sandbox cannot see); write each variant's parameters and constructor arguments.
- ``timing`` (GPU): time the eager reference and ``torch.compile`` of it with the one
  benchmarking routine, in the order the orchestrator chose.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path

import torch

from ..kernelbench import instance
from ..kernelbench.problem import load_file
from . import channel, exact, tensorio, timing
from .stopwatch import timed


def set_precision_policy(allow_tf32: bool) -> None:
    # Threat row 8: the float32 reference is computed in float32, not TF32, unless the problem
    # says otherwise; candidates are then held to a float32 tolerance.
    torch.backends.cuda.matmul.allow_tf32 = allow_tf32
    torch.backends.cudnn.allow_tf32 = allow_tf32


def outputs(job: dict, out: channel.Writer) -> None:
    problem = load_file(job["problem_path"])
    device, dtype = job["device"], job["dtype"]
    modules = {name: problem.instantiate(ov) for name, ov in job["variants"].items()}
    params_dir, inputs_dir, ref_dir = (
        Path(job[k]) for k in ("params_dir", "inputs_dir", "ref_dir")
    )
    models = {}
    spans: dict[str, float] = {}
    exact_notes: set[str] = set()
    for name, module in modules.items():
        with timed(spans, "build"):
            model = instance.build_model(module, job["init_seed"], dtype, device)
        models[name] = model
        state = model.state_dict()
        with timed(spans, "write"):
            tensorio.write(
                params_dir / f"{name}.bin",
                list(state.values()),
                {"names": list(state.keys()), "init_inputs": instance.init_inputs(module)},
            )
    work, hashes = None, {}
    for trial in job["trials"]:
        module = modules[trial["variant"]]
        with timed(spans, "inputs"):
            inputs = instance.make_inputs(
                module, trial["seed"], trial["distribution"], dtype, device
            )
        with timed(spans, "write"):
            hashes[trial["name"]] = tensorio.write(inputs_dir / f"{trial['name']}.bin", inputs)
        # The twin is copied before the forward (which may update state) and dropped after
        # its own, so the reference's forward never runs short of the memory it had before.
        twin = None
        if dtype in exact.HALF:
            with timed(spans, "exact"):
                twin = _exact_model(models[trial["variant"]], exact_notes)
        with timed(spans, "forward"):
            outputs = instance.run_reference(models[trial["variant"]], inputs)
        with timed(spans, "write"):
            tensorio.write(ref_dir / f"{trial['name']}.bin", outputs)
        if twin is not None:
            with timed(spans, "exact"):
                wide = _exact_outputs(twin, inputs, outputs, problem.tolerance, exact_notes)
                del twin
            if wide is not None:
                tensorio.write(ref_dir / f"{trial['name']}.exact.bin", wide)
        # The work estimate feeds the roofline of a timed run only; its FLOP counter imports
        # torch._dynamo on first use (1.3 s on the CI machine), so a CPU evaluation skips it.
        if work is None and trial["variant"] == "main" and device == "cuda":
            with timed(spans, "flop_count"):
                work = _estimate_work(models["main"], inputs)
    out.send(
        "reference", work=work, input_hashes=hashes, seconds=spans, exact_notes=sorted(exact_notes)
    )


def _exact_model(model: torch.nn.Module, notes: set[str]) -> torch.nn.Module | None:
    try:
        return exact.widen_model(model)
    except Exception as exc:  # memory, or a module that cannot be copied: no exact reference
        notes.add(f"no float64 reference: {type(exc).__name__}: {exc}"[:300])
        return None


def _exact_outputs(
    model: torch.nn.Module, inputs: list, outputs: list, tol: dict, notes: set[str]
) -> list | None:
    try:
        wide = instance.run_reference(model, exact.widen(inputs))
    except Exception as exc:  # an op without a float64 kernel, memory: the half reference rules
        notes.add(f"no float64 reference: {type(exc).__name__}: {exc}"[:300])
        return None
    why = exact.disagreement(outputs, wide, tol)
    if why:
        notes.add(f"no float64 reference: {why}")
        return None
    return exact.stored(wide, notes)


def _estimate_work(model: torch.nn.Module, inputs: list) -> dict | None:
    from ..feedback import roofline

    try:
        w = roofline.estimate_work(model, inputs)
    except Exception as exc:  # an estimate is optional; say why it is missing
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {"flops": w.flops, "bytes": w.bytes, "flops_source": w.flops_source}


def _timing(job: dict, out: channel.Writer) -> None:
    problem = load_file(job["problem_path"])
    module = problem.instantiate(job["variants"]["main"])
    device, dtype = "cuda", job["dtype"]
    model = instance.build_model(module, job["init_seed"], dtype, device)
    templates = instance.make_inputs(module, job["timing_seed"], "given", dtype, device)
    gen = torch.Generator().manual_seed(job["timing_seed"])
    clock, flusher = timing.Clock.capture(), timing.L2Flusher(torch.device(device))
    results: dict[str, list[float] | str] = {}
    for which in job["order"]:
        if which == "compile":
            try:
                fn = torch.compile(model)
                with torch.no_grad():
                    fn(*templates)  # compile outside the measurement
            except Exception as exc:  # baseline unavailable is reported, not fatal
                results[which] = f"torch.compile failed: {type(exc).__name__}: {exc}"[:500]
                continue
        else:
            fn = model
        with torch.no_grad():
            results[which] = timing.benchmark(
                fn,
                lambda: timing.fresh_inputs(templates, gen),
                clock=clock,
                flusher=flusher,
                budget_ms=job["budget_ms"],
                warmup_ms=job["warmup_ms"],
            )
    out.send(
        "baselines",
        results=results,
        flush_bytes=flusher.nbytes,
        persisting_l2_reset=flusher.persisting_reset,
    )


def main(argv: list[str]) -> int:
    job = json.loads(Path(argv[1]).read_text())
    out = channel.Writer(job["channel_fd"])
    set_precision_policy(job.get("allow_tf32", False))
    started = time.perf_counter()
    try:
        (outputs if job["mode"] == "outputs" else _timing)(job, out)
    except Exception as exc:
        out.send("error", message=f"{type(exc).__name__}: {exc}", trace=traceback.format_exc())
        return 1
    out.send("done", seconds=time.perf_counter() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
