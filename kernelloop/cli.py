"""The ``kernelloop`` command: one Typer app, a thin shell over the library.

Heavy modules (torch, the sandbox) are imported inside commands, so ``kernelloop --help`` is
instant. Exit codes: 0 success/accepted, 1 rejected or failed checks, 2 usage or internal error.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .apply_cli import apply_cmd
from .capture_cli import capture_cmd
from .cli_common import SetOpt, SizeOpt, fail, load_problem, parse_sets
from .dashboard_cli import dashboard_cmd, report_cmd
from .library.cli import library_app
from .profile_cli import profile_cmd
from .runs.cli import runs_app

app = typer.Typer(
    help="Write, verify and tune GPU kernels for PyTorch code.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
problems_app = typer.Typer(help="List, inspect and hygiene-check problems.", no_args_is_help=True)
app.add_typer(problems_app, name="problems")
app.add_typer(runs_app, name="runs")  # the run store's commands, in the one Typer app
app.add_typer(library_app, name="library")  # verified kernels: list, verify, export, ...
app.command("dashboard")(dashboard_cmd)  # web pages over the run store (the dashboard extra)
app.command("report")(report_cmd)  # one run as a self-contained HTML file
app.command("profile")(profile_cmd)  # Nsight Compute + static resources + roofline (profile_cli)
app.command("capture")(capture_cmd)  # a user's model -> ranked problems (capture_cli)
app.command("apply")(apply_cmd)  # patch a captured model with its kernels (apply_cli)
console = Console()


@app.command("eval")
def eval_cmd(
    problem: Annotated[str, typer.Argument(help="Problem file, folder entry, or bundled id.")],
    candidate: Annotated[Path, typer.Argument(help="Python file defining ModelNew.")],
    backend: Annotated[
        str | None, typer.Option(help="Force triton, cuda or cuda-inline (default: detected).")
    ] = None,
    size: SizeOpt = None,
    set_: SetOpt = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print exactly one JSON verdict.")
    ] = False,
    timeout: Annotated[float | None, typer.Option(help="Worker wall timeout in seconds.")] = None,
    sandbox: Annotated[
        str | None, typer.Option(help="Isolation: auto, process, bwrap or docker (default: auto).")
    ] = None,
) -> None:
    """Evaluate CANDIDATE against PROBLEM: static gate, sandboxed correctness, timing on a GPU.

    Exit status: 0 accepted, 1 rejected, 2 usage or internal error.
    """
    from .kernelbench.problem import ProblemError
    from .sandbox.evaluate import evaluate

    if backend not in (None, "triton", "cuda", "cuda-inline"):
        raise fail(f"unknown backend {backend!r}: use triton, cuda or cuda-inline")
    if not candidate.is_file():
        raise fail(f"no such candidate file: {candidate}")
    prob = load_problem(problem, "`kernelloop eval`")
    # A CPU evaluation interprets every kernel (seconds to a minute): say what is running.
    waiting = (
        contextlib.nullcontext()
        if as_json
        else console.status(f"evaluating {candidate.name} against {prob.id}...")
    )
    try:
        with waiting:
            verdict = evaluate(
                prob,
                candidate.read_text(),
                backend=backend,
                size=size,
                sets=parse_sets(set_),
                sandbox=sandbox,
                timeout_s=timeout,
            )
    except (ProblemError, ValueError, RuntimeError) as exc:
        raise fail(str(exc)) from None
    if as_json:
        sys.stdout.write(verdict.to_json() + "\n")
    else:
        from .report_text import print_verdict

        print_verdict(console, verdict)
    raise typer.Exit(0 if verdict.accepted else 1)


@problems_app.command("list")
def problems_list(
    spec: Annotated[str, typer.Argument(help="bundled, a level, a folder or a file.")] = "bundled",
    kernelbench: Annotated[
        Path | None, typer.Option(help="A KernelBench checkout to list instead.")
    ] = None,
    level: Annotated[
        int | None, typer.Option(help="KernelBench level (with --kernelbench).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array.")] = False,
) -> None:
    """List problems with their sizes, dtype and hold-out count."""
    from .kernelbench import loader
    from .kernelbench.problem import ProblemError

    try:
        found = loader.load_kernelbench(kernelbench, level) if kernelbench else loader.load(spec)
    except ProblemError as exc:
        raise fail(str(exc)) from None
    if as_json:
        sys.stdout.write(json.dumps([p.to_dict() for p in found]) + "\n")
        return
    table = Table(title=f"{len(found)} problems")
    for col in ("id", "dtype", "sizes", "holdout", "summary"):
        table.add_column(col)
    for p in found:
        table.add_row(p.id, p.dtype, ", ".join(["gpu", *p.sizes]), str(len(p.holdout)), p.summary)
    console.print(table)


@problems_app.command("show")
def problems_show(problem: Annotated[str, typer.Argument(help="Problem file or bundled id.")]):
    """Print a problem's declarations and source."""
    from rich.syntax import Syntax

    p = load_problem(problem, "`kernelloop problems show`")
    info = p.to_dict()
    for key in (
        "id",
        "path",
        "summary",
        "dtype",
        "tolerance",
        "sizes",
        "holdout",
        "allow_torch",
        "distributions",
        "constants",
    ):
        console.print(f"[bold]{key}[/bold]: {info[key]}")
    if "cpu" not in p.sizes:  # what a CPU evaluates instead: the derived size, and why
        from .kernelbench import autosize
        from .kernelbench.problem import ProblemError

        try:
            derived = autosize.derive(p)
        except ProblemError as exc:
            console.print(f"[bold]derived cpu size[/bold]: none ({escape(str(exc))})")
        else:
            console.print(f"[bold]derived cpu size[/bold] (--size auto): {derived.describe()}")
            for name, why in derived.why.items():
                console.print(f"  {name}: {escape(why)}")
    console.print(Syntax(p.source, "python", line_numbers=True))


@problems_app.command("check")
def problems_check(
    spec: Annotated[str, typer.Argument(help="bundled, a level, a folder or a file.")] = "bundled",
    size: SizeOpt = None,
    set_: SetOpt = None,
    kernelbench: Annotated[Path | None, typer.Option(help="Check a KernelBench checkout.")] = None,
    level: Annotated[
        int | None, typer.Option(help="KernelBench level (with --kernelbench).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array of reports.")] = False,
) -> None:
    """Task-hygiene check: outputs depend on inputs and weights, vary, are above the noise floor.

    Exit status 1 when any problem fails a check.
    """
    from .kernelbench import hygiene, loader
    from .kernelbench.problem import ProblemError

    skipped: list = []
    try:
        found = (
            loader.load_kernelbench(kernelbench, level, skipped)
            if kernelbench
            else loader.load(spec, skipped)
        )
    except ProblemError as exc:
        raise fail(str(exc)) from None
    sets = parse_sets(set_)
    reports = [
        hygiene.HygieneReport(path.stem, "", {"loads": hygiene.Check(False, why)})
        for path, why in skipped
    ]
    with console.status("checking...") as status:
        for i, p in enumerate(found, 1):
            status.update(f"checking {p.id} ({i}/{len(found)})")
            reports.append(hygiene.check(p, size=size, sets=sets))
    if as_json:
        sys.stdout.write(json.dumps([r.to_dict() for r in reports]) + "\n")
    else:
        table = Table(title="task hygiene")
        for col in ("problem", "size", "result", "cpu ms", "H100 floor ms", "failed checks"):
            table.add_column(col)
        for r in reports:
            failed = "; ".join(f"{k}: {c.detail}" for k, c in r.checks.items() if not c.passed)
            est = f"{r.gpu_estimate_ms:.3f}" if r.gpu_estimate_ms is not None else "n/a"
            table.add_row(
                r.problem_id,
                r.size,
                "[green]ok[/green]" if r.passed else "[red]FAIL[/red]",
                f"{r.cpu_ms:.1f}" if r.cpu_ms is not None else "n/a",
                est,
                failed,
            )
        console.print(table)
    raise typer.Exit(0 if all(r.passed for r in reports) else 1)


BUILTIN = "builtin"  # the model name that selects the template coder and the search judge


@app.command()
def optimize(
    problems: Annotated[
        list[str] | None, typer.Argument(help="Problems: bundled ids, levels, files or folders.")
    ] = None,
    coder: Annotated[
        str | None,
        typer.Option(help="Model name for the Coder, or 'builtin' (templates, no LLM)."),
    ] = None,
    judge: Annotated[
        str | None,
        typer.Option(help="Model name for the Judge, or 'builtin' (feedback-guided search)."),
    ] = None,
    base_url: Annotated[
        str | None, typer.Option(help="OpenAI-compatible endpoint (else KERNELLOOP_BASE_URL).")
    ] = None,
    rounds: Annotated[int, typer.Option(min=1, help="Rounds per problem.")] = 3,
    candidates: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Candidates per round (K; default 2, or 1 for --coder builtin without a GPU, "
            "where config neighbours can be verified but not timed).",
        ),
    ] = None,
    backend: Annotated[
        str, typer.Option(help="Backend the Coder writes: triton or cuda.")
    ] = "triton",
    size: SizeOpt = None,
    set_: SetOpt = None,
    budget_usd: Annotated[
        float | None, typer.Option(help="Stop spending at this many USD.")
    ] = None,
    budget_tokens: Annotated[int | None, typer.Option(help="Stop at this many tokens.")] = None,
    budget_minutes: Annotated[float | None, typer.Option(help="Stop after this wall time.")] = None,
    temperature: Annotated[float | None, typer.Option(help="Sampling temperature.")] = None,
    reasoning_effort: Annotated[
        str | None, typer.Option(help="low, medium or high (reasoning models only).")
    ] = None,
    run_dir: Annotated[Path | None, typer.Option(help="Where runs are written (./runs).")] = None,
    resume: Annotated[str | None, typer.Option(help="Continue the run with this id.")] = None,
    sandbox: Annotated[
        str | None, typer.Option(help="Isolation: auto, process, bwrap or docker (default: auto).")
    ] = None,
    executor: Annotated[
        str, typer.Option(help="Where evaluations run: local (a queue per GPU) or ray.")
    ] = "local",
    ray_address: Annotated[
        str | None, typer.Option(help="Ray cluster (HOST:6379) for --executor ray; else local.")
    ] = None,
    seed_builtin: Annotated[
        bool,
        typer.Option(help="Also evaluate the builtin coder's kernel in round 0 (LLM campaigns)."),
    ] = False,
    allow_untimed: Annotated[
        bool,
        typer.Option(
            help="Also keep verified winners that were never timed (a CPU run) in the library's "
            "untimed tier, to try the model path without a GPU; labelled untimed everywhere and "
            "used only by `kernelloop apply --allow-untimed`."
        ),
    ] = False,
) -> None:
    """Run an optimisation campaign: Coder and Judge agents, every candidate through the evaluator.

    LLM agents need an OpenAI-compatible endpoint (--base-url or KERNELLOOP_BASE_URL; a key in
    KERNELLOOP_API_KEY or OPENAI_API_KEY where the endpoint wants one). `--coder builtin` needs
    none: it writes Triton kernels from templates matched to the traced reference, and the
    builtin Judge searches their configs from measured time and hardware feedback (on a machine
    without a GPU it verifies the default config and stops). Ctrl-C or a crash loses nothing:
    `--resume RUN_ID` continues without repeating a completed LLM call or evaluation.

    Each solved problem's winner is offered to the kernel library (`kernelloop library list`):
    it is kept when it is GPU-timed and faster than PyTorch with confidence, or, with
    --allow-untimed, when it was verified without a timing.
    """
    from . import settings
    from .agents.state import CampaignOptions
    from .campaign_cli import run_optimize

    cfg = settings.get()
    if not resume:
        if not problems:
            raise fail("name at least one problem (e.g. level1/01_relu), or --resume RUN_ID")
        if coder == BUILTIN and judge is None:
            judge = BUILTIN
        if not coder or not judge:
            raise fail("choose models: --coder MODEL --judge MODEL, or --coder builtin")
        if (coder == BUILTIN) != (judge == BUILTIN):
            raise fail(
                "--coder builtin and --judge builtin go together: the builtin Judge proposes "
                "template configs, which only the builtin Coder reads"
            )
        if coder != BUILTIN and not (base_url or cfg.base_url or cfg.api_key):
            raise fail(
                "no LLM endpoint configured: pass --base-url URL or set KERNELLOOP_BASE_URL "
                "(any OpenAI-compatible server: vLLM, SGLang, Ollama, ...), and set "
                "KERNELLOOP_API_KEY or OPENAI_API_KEY if it needs a key"
            )
    if backend not in ("triton", "cuda"):
        raise fail(f"unknown backend {backend!r}: use triton or cuda")
    _check_execution(sandbox, executor, ray_address)
    if candidates is None:
        from .sandbox.evaluate import cuda_available

        candidates = 1 if coder == BUILTIN and not cuda_available() else 2
    options = CampaignOptions(
        rounds=rounds,
        candidates=candidates,
        backend=backend,
        size=size,
        sets=parse_sets(set_),
        budget_usd=budget_usd,
        budget_tokens=budget_tokens,
        budget_minutes=budget_minutes,
        temperature=temperature,
        reasoning_effort=reasoning_effort,
        sandbox=sandbox,
        executor=executor,
        ray_address=ray_address,
        seed_builtin=seed_builtin,
        allow_untimed=allow_untimed,
    )
    code = run_optimize(
        console,
        problems=problems or [],
        coder=coder,
        judge=judge,
        base_url=base_url,
        options=options,
        run_dir=run_dir or cfg.runs_dir,
        resume=resume,
        fail=fail,
    )
    raise typer.Exit(code)


def _check_execution(sandbox: str | None, executor: str, ray_address: str | None) -> None:
    """Say now, not after the first LLM call, when the sandbox or executor cannot work here."""
    from .sandbox import backends, executors

    if executor not in executors.EXECUTORS:
        raise fail(f"unknown executor {executor!r}: use {' or '.join(executors.EXECUTORS)}")
    if ray_address and executor != "ray":
        raise fail("--ray-address goes with --executor ray")
    if executor == "ray":
        from .sandbox.executors.ray_cluster import INSTALL_HINT

        try:
            import ray  # noqa: F401
        except ImportError:
            raise fail(INSTALL_HINT) from None
    if sandbox:
        try:
            backends.select(sandbox)
        except (ValueError, RuntimeError) as exc:
            raise fail(str(exc)) from None


@app.command()
def doctor(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """What this machine can do: GPU, driver, nvcc, NVRTC, Triton, bwrap, docker, ncu, NVML."""
    from .doctor import run_checks

    checks = run_checks()
    if as_json:
        sys.stdout.write(json.dumps([c.__dict__ for c in checks]) + "\n")
        return
    table = Table(title="kernelloop doctor")
    for col in ("component", "status", "detail", "if missing"):
        table.add_column(col, overflow="fold")
    for c in checks:
        table.add_row(
            c.name,
            "[green]ok[/green]" if c.ok else "[yellow]missing[/yellow]",
            c.detail,
            "" if c.ok else c.consequence,
        )
    console.print(table)


def main() -> None:  # pragma: no cover - console script entry
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
