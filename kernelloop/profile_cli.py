"""``kernelloop profile PROBLEM CANDIDATE``: what the hardware says about one candidate.

On a GPU with Nsight Compute: the evaluator's verdict (correctness, timing, NVML), the ncu metrics
of the candidate's own kernels (profiled in the sandbox), the static resources of its kernels,
and the summary the Judge would read. On a machine without a GPU: what can be known without one,
namely the static resources (CUDA kernels compiled by NVRTC for sm_90: registers, spills, shared
memory; Triton kernels, whose argument types are known only at launch, are run at the problem's
CPU size under the interpreter and what they launched is compiled for sm_90), the roofline of
the problem at its size on an H100, and a line naming what was skipped and why. Nothing pretends a
CPU number is a GPU number. Heavy imports stay inside the command (``kernelloop --help`` stays
instant).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from .cli_common import fail, load_problem, parse_sets

SCHEMA_VERSION = 1
CPU_SPEC = "NVIDIA H100 80GB HBM3"  # the GPU a CPU machine sizes problems for (as hygiene does)
NO_GPU = "no GPU: Nsight Compute, NVML and timing skipped"


def profile_cmd(
    problem: Annotated[str, typer.Argument(help="Problem file or bundled id.")],
    candidate: Annotated[Path, typer.Argument(help="Python file defining ModelNew.")],
    metrics: Annotated[
        str,
        typer.Option(
            "--metrics",
            help="ncu metric sets: default, memory, compute, occupancy, stalls (comma-separated; "
            "extras add to default), or metric names.",
        ),
    ] = "default",
    size: Annotated[
        str | None,
        typer.Option(
            "--size",
            help="Size the roofline (and, on a GPU, the run) is for; default gpu, the module's "
            "constants. Without a GPU, Triton kernels run at the CPU size (declared or auto).",
        ),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a module constant, e.g. --set batch_size=16."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print exactly one JSON document.")
    ] = False,
    evaluate_first: Annotated[
        bool,
        typer.Option(
            "--eval/--no-eval",
            help="Evaluate first: on a GPU the verdict feeds the Judge's summary; on a CPU the "
            "run at CPU size tells Triton kernels' argument types, so they can be compiled.",
        ),
    ] = True,
    raw_out: Annotated[
        Path | None, typer.Option("--raw-out", help="Save ncu's raw CSV here (on a GPU).")
    ] = None,
    sandbox: Annotated[
        str | None, typer.Option(help="Isolation: auto, process or bwrap (default: auto).")
    ] = None,
    admin_counters: Annotated[
        bool,
        typer.Option(
            "--admin-counters",
            help="Let the profiled worker keep root's capabilities, for drivers that restrict "
            "counters to admins (needs --sandbox process; trusted candidates only).",
        ),
    ] = False,
    timeout: Annotated[float | None, typer.Option(help="Worker wall timeout in seconds.")] = None,
) -> None:
    """Profile CANDIDATE for PROBLEM: Nsight Compute metrics and the Judge's summary on a GPU;
    static resources and the roofline estimate anywhere.

    Exit status: 0 profiled (or everything possible here was shown), 1 the candidate could not be
    profiled, 2 usage or environment error.
    """
    from .feedback import ncu
    from .kernelbench.problem import ProblemError

    if not candidate.is_file():
        raise fail(f"no such candidate file: {candidate}")
    try:
        ncu.resolve_metrics(metrics)
    except ValueError as exc:
        raise fail(str(exc)) from None
    prob = load_problem(problem, "`kernelloop profile`")
    sets = parse_sets(set_)
    source = candidate.read_text()
    try:
        doc = collect(
            prob,
            source,
            metrics=metrics,
            size=size,
            sets=sets,
            evaluate_first=evaluate_first,
            sandbox=sandbox,
            admin_counters=admin_counters,
            timeout_s=timeout,
            raw_out=raw_out,
        )
    except ncu.NcuPermissionError as exc:
        raise fail(str(exc)) from None
    except (ProblemError, ValueError, RuntimeError) as exc:
        raise fail(str(exc)) from None
    doc["candidate"] = str(candidate)
    if as_json:
        sys.stdout.write(json.dumps(doc, default=str) + "\n")
    else:
        _print(Console(), doc)
    raise typer.Exit(1 if doc["ncu_failed"] else 0)


def collect(
    problem,
    source: str,
    *,
    metrics: str = "default",
    size: str | None = None,
    sets: dict | None = None,
    evaluate_first: bool = True,
    sandbox: str | None = None,
    admin_counters: bool = False,
    timeout_s: float | None = None,
    raw_out: Path | None = None,
) -> dict[str, Any]:
    """Everything ``kernelloop profile`` shows, as one JSON-ready document."""
    from .feedback import ncu
    from .sandbox.static_gate import detect_backend

    overrides = problem.overrides_for(size, sets)  # a bad --size/--set is a usage error
    backend = detect_backend(source)
    gpu = _has_gpu()
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "problem": problem.id,
        "backend": backend,
        "size": size or "gpu",
        "gpu": gpu,
        "device": None,
        "skipped": [],
        "static": [],
        "roofline": None,
        "verdict": None,
        "ncu": None,
        "ncu_unavailable": None,
        "ncu_failed": False,
        "summary": None,
    }
    arch = _gpu_arch() if gpu else "sm_90"
    doc["static"] = _static(source, backend, arch)
    spec = _spec(gpu)
    doc["device"] = spec.name if gpu else None
    doc["roofline"] = _roofline(problem, overrides, spec)
    if not gpu:
        doc["skipped"].append(NO_GPU)
        if backend == "triton":
            _triton_static_on_cpu(doc, problem, source, evaluate_first, sandbox, timeout_s)
        return doc
    verdict = None
    if evaluate_first:
        from .sandbox.evaluate import evaluate

        verdict = evaluate(
            problem, source, size=size, sets=sets, sandbox=sandbox, timeout_s=timeout_s
        )
        doc["verdict"] = verdict.to_dict()
    else:
        doc["skipped"].append(
            "evaluation (--no-eval): no verdict, timing or NVML, so no Judge summary"
        )
    report = None
    try:
        report = ncu.profile_candidate(
            problem,
            source,
            metrics=metrics,
            size=size,
            sets=sets,
            timeout_s=timeout_s,
            sandbox=sandbox,
            admin_counters=admin_counters,
        )
    except ncu.ProfileError as exc:  # reported in the document; the rest of it still stands
        doc["ncu_unavailable"] = str(exc)
        doc["ncu_failed"] = ncu.unavailable() is None  # ncu ran: the candidate is the problem
        doc["skipped"].append(f"Nsight Compute skipped: {exc}")
    else:
        doc["ncu"] = report.to_dict()
        if raw_out is not None:
            report.save_raw(raw_out)
    if verdict is not None:
        from .feedback import static_resources
        from .feedback.summary import judge_summary

        doc["summary"] = judge_summary(
            verdict,
            static=[static_resources.StaticResources.from_dict(s) for s in doc["static"]],
            ncu=None if report is None else report.aggregate(),
            dtype=problem.dtype,
        )
    return doc


# --- the pieces -------------------------------------------------------------------------------
def _triton_static_on_cpu(doc, problem, source, evaluate_first, sandbox, timeout_s) -> None:
    """Triton kernels' argument types are known only at launch: run the candidate at its CPU
    size under the interpreter (the evaluator, sandboxed), then compile what it launched for
    sm_90 in a sandbox worker. The verdict and the summary the Judge would read come along."""
    if not evaluate_first:
        doc["skipped"].append(
            "Triton resources (--no-eval): a kernel's argument types come from a run"
        )
        return
    from .feedback import static_resources
    from .feedback.summary import judge_summary
    from .sandbox import static_job
    from .sandbox.evaluate import evaluate

    verdict = evaluate(problem, source, sandbox=sandbox, timeout_s=timeout_s)  # its CPU size
    doc["verdict"] = verdict.to_dict()
    if not verdict.launches:
        why = (
            "the CPU run launched no kernel it could record"
            if verdict.build
            else "the evaluator rejected the candidate before it ran"
        )
        doc["skipped"].append(f"Triton resources: {why}")
    else:
        try:
            found = static_job.compile_recorded(source, verdict.launches, sandbox=sandbox)
        except RuntimeError as exc:
            doc["skipped"].append(f"Triton resources: {exc}")
        else:
            note = f"argument types and constexprs of its launch at size {verdict.size} (CPU run)"
            for r in found:
                r.notes.append(note)
            doc["static"] = [r.to_dict() for r in found]
    static = [static_resources.StaticResources.from_dict(s) for s in doc["static"]]
    doc["summary"] = judge_summary(verdict, static=static, ncu=None, dtype=problem.dtype)


def _has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def _gpu_arch() -> str:
    import torch

    major, minor = torch.cuda.get_device_capability()
    return f"sm_{major}{minor}"


def _spec(gpu: bool):
    from .feedback import gpu_specs

    return gpu_specs.current() if gpu else gpu_specs.lookup(CPU_SPEC)


def _static(source: str, backend: str | None, arch: str) -> list[dict[str, Any]]:
    """Static resources of the candidate's kernels: compilers only, nothing of it runs here."""
    from .feedback import candidate_resources

    try:
        found = candidate_resources.from_candidate_source(source, backend, arch=arch)
    except SyntaxError as exc:
        return [{"kernel": "?", "backend": backend, "arch": arch, "notes": [f"syntax: {exc}"]}]
    return [r.to_dict() for r in found]


def _roofline(problem, overrides: dict, spec) -> dict[str, Any]:
    """The problem's compulsory work at this size (meta tensors: nothing is allocated or
    computed) and the fastest ``spec`` could do it, as ``kernelbench.hygiene`` sizes it."""
    import torch

    from .feedback import gpu_specs, roofline
    from .kernelbench import instance

    dtype = instance.torch_dtype(problem.dtype)
    try:
        module = problem.instantiate(overrides)
        with torch.device("meta"):
            torch.manual_seed(0)
            model = module.Model(*module.get_init_inputs()).to(dtype)
            inputs = [
                t.to(dtype) if isinstance(t, torch.Tensor) and t.is_floating_point() else t
                for t in module.get_inputs()
            ]
            work = roofline.estimate_work(model, inputs)
    except Exception as exc:  # some references cannot run on meta tensors
        return {"error": f"{type(exc).__name__}: {exc}"[:300]}
    memory_s = work.bytes / gpu_specs.peak_bandwidth(spec)
    compute_s = work.flops / gpu_specs.peak_flops(spec, dtype)
    return {
        "gpu": spec.name,
        "dtype": problem.dtype,
        "flops": work.flops,
        "bytes": work.bytes,
        "flops_source": work.flops_source,
        "intensity_flop_per_byte": work.intensity,
        "memory_floor_ms": memory_s * 1e3,
        "compute_floor_ms": compute_s * 1e3,
        "floor_ms": roofline.floor_seconds(work, spec, dtype) * 1e3,
        "bound_at_roofline": "memory" if memory_s >= compute_s else "compute",
    }


# --- printing ---------------------------------------------------------------------------------
def _print(console: Console, doc: dict[str, Any]) -> None:
    console.print(
        f"[bold]profile[/bold] {doc['problem']} [{doc['size']}]  {doc.get('candidate', '')}  "
        f"backend {doc['backend']}  on {doc['device'] or 'a machine without a GPU'}"
    )
    for line in doc["skipped"]:
        console.print(f"[yellow]skipped:[/yellow] {line}")
    if doc["static"]:
        table = Table(title="static resources (compiled, not run)")
        table.add_column("kernel", no_wrap=True)
        for col in ("arch", "regs/thread", "spills st/ld B", "shared B", "local B", "from"):
            table.add_column(col)
        for s in doc["static"]:
            spills = (
                "-"
                if s.get("spill_stores_bytes") is None
                else f"{s['spill_stores_bytes']}/{s['spill_loads_bytes']}"
            )
            table.add_row(
                s["kernel"],
                s["arch"],
                _na(s.get("registers_per_thread")),
                spills,
                _na(s.get("shared_bytes")),
                _na(s.get("local_bytes")),
                s.get("source") or "none",
            )
        console.print(table)
        for s in doc["static"]:
            for note in s.get("notes", []):
                console.print(f"  {s['kernel']}: {note}", markup=False)
    r = doc["roofline"] or {}
    if "error" in r:
        console.print(f"roofline: unavailable ({r['error']})")
    elif r:
        console.print(
            f"roofline on {r['gpu']} ({r['dtype']}, datasheet peaks): "
            f"{r['flops'] / 1e9:.4g} GFLOP ({r['flops_source']}), "
            f"{r['bytes'] / 1e9:.4g} GB compulsory traffic, "
            f"{r['intensity_flop_per_byte']:.3g} FLOP/B; floor {r['floor_ms']:.4g} ms "
            f"(memory {r['memory_floor_ms']:.4g} ms, compute {r['compute_floor_ms']:.4g} ms): "
            f"{r['bound_at_roofline']}-bound at the roofline"
        )
    if doc["verdict"]:
        v = doc["verdict"]
        state = "[green]accepted[/green]" if v["accepted"] else "[red]rejected[/red]"
        console.print(f"verdict: {state} {'; '.join(r['code'] for r in v['reasons'])}")
    if doc["ncu"]:
        _print_ncu(console, doc["ncu"])
    if doc["summary"]:
        console.print("[bold]Judge summary[/bold]")
        console.print(doc["summary"], markup=False)


def _print_ncu(console: Console, report: dict[str, Any]) -> None:
    names = ", ".join(dict.fromkeys(k["name"] for k in report["kernels"]))
    console.print(
        f"{report.get('tool') or 'ncu'} on {report.get('device') or 'the GPU'}: "
        f"{len(report['kernels'])} launch(es) of {names}"
    )
    table = Table(title="Nsight Compute (over launches: counters summed, rates time-weighted)")
    table.add_column("metric", overflow="fold")
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("unit", no_wrap=True)
    for metric, (value, unit) in report["aggregate"].items():
        table.add_row(metric, _number(value), unit)
    console.print(table)
    if report["missing"]:
        console.print(f"[yellow]missing metrics:[/yellow] {', '.join(report['missing'])}")
    for w in report["warnings"][:5]:
        console.print(f"[yellow]ncu:[/yellow] {w}", markup=False)


def _number(value) -> str:
    if not isinstance(value, float):
        return str(value)
    return f"{value:,.0f}" if abs(value) >= 1e4 else f"{value:.4g}"


def _na(value) -> str:
    return "?" if value is None else str(value)
