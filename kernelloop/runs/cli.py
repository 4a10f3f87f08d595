"""``kernelloop runs``: list campaign runs and show one, as tables or as one JSON document.

A thin shell over :mod:`kernelloop.runs.store`; the store is imported inside the commands so
registering this sub-app costs nothing at start-up. Exit codes: 0 success, 2 unknown run or a run
that cannot be read.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ..cli_common import JsonOpt, RunDirOpt, emit, err, runs_dir

if TYPE_CHECKING:
    from .rows import CandidateRow, LlmCallRow

runs_app = typer.Typer(help="List and inspect campaign runs.", no_args_is_help=True)
console = Console()


# --- formatting ---------------------------------------------------------------------------------
def _usd(spend: dict) -> str:
    text = f"${spend['usd']:.4f}"
    if spend["usd_unknown_calls"]:
        text += f" + {spend['usd_unknown_calls']} unknown"
    return text


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}%"


def _times100(share: float | None) -> float | None:
    return None if share is None else 100 * share


def _x(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def _interval(iv: dict | None) -> str:
    """A speedup with its confidence interval (bootstrap bounds, as the verdict computed them)."""
    if iv is None:
        return "n/a"
    return f"{iv['point']:.2f}x [{iv['low']:.2f}, {iv['high']:.2f}]"


def _result(accepted: bool | None) -> str:
    if accepted is None:
        return "[yellow]pending[/yellow]"
    return "[green]accepted[/green]" if accepted else "[red]rejected[/red]"


# --- commands -----------------------------------------------------------------------------------
@runs_app.command("list")
def runs_list(run_dir: RunDirOpt = None, as_json: JsonOpt = False) -> None:
    """List runs, newest first: status, problems, models, spend, correct %, geomean speedup."""
    from .store import list_runs

    folder = runs_dir(run_dir)
    runs = list_runs(folder)
    if as_json:
        emit(runs)
        return
    if not runs:
        console.print(f"no runs in {folder} (start one with `kernelloop optimize`)")
        return
    table = Table(title=f"{len(runs)} runs in {folder}")
    for col in ("run id", "created (UTC)", "status", "problems", "models", "USD", "correct"):
        table.add_column(col, no_wrap=col == "run id")
    table.add_column("geomean vs eager / compile")
    for r in runs:
        if r["status"] == "unreadable":
            table.add_row(r["run_id"], "", "[red]unreadable[/red]", "", "", "", "", r["error"])
            continue
        table.add_row(
            r["run_id"],
            (r["created_at"] or "")[:19].replace("T", " "),
            r["status"],
            str(r["n_problems"]),
            ", ".join(r["models"]),
            _usd({"usd": r["usd"], "usd_unknown_calls": r["usd_unknown_calls"]}),
            _pct(r["correct_pct"]),
            f"{_x(r['geomean_speedup_eager'])} / {_x(r['geomean_speedup_compile'])}",
        )
    console.print(table)


@runs_app.command("show")
def runs_show(
    run_id: Annotated[str, typer.Argument(help="A run id from `kernelloop runs list`, or a path.")],
    run_dir: RunDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show one run: per problem its candidates, best kernel and spend; then every LLM call."""
    from .store import RunStore, RunStoreError, list_runs

    folder = runs_dir(run_dir)
    given = Path(run_id)
    path = given if (given / "run.sqlite").is_file() else folder / run_id
    if not (path / "run.sqlite").is_file():
        found = [r["run_id"] for r in list_runs(folder)]
        listing = ", ".join(found) if found else "none"
        err.print(f"[red]error:[/red] no run {run_id!r} in {folder}; runs found: {listing}")
        raise typer.Exit(2)
    try:
        store = RunStore.open(path)
    except RunStoreError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    with store:
        summary = store.summary()
        candidates = store.candidates()
        calls = store.llm_calls()
        advice = [a for p in summary["problems"] for a in store.advice(p["problem_id"])]
    if as_json:
        emit(
            {
                "summary": summary,
                "candidates": [c.to_dict() for c in candidates],
                "llm_calls": [c.to_dict() for c in calls],
                "advice": [a.to_dict() for a in advice],
            }
        )
        return
    _print_run(summary, candidates, calls)


def _print_run(s: dict, candidates: list[CandidateRow], calls: list[LlmCallRow]) -> None:
    spend = s["spend"]
    console.print(
        f"[bold]{s['run_id']}[/bold]  {s['status']}  created {s['created_at']}  "
        f"{s['minutes']:.1f} min  models: {', '.join(s['models']) or 'none'}"
    )
    if s.get("candidates_per_minute") is not None:
        executor = s["config"].get("options", {}).get("executor", "local")
        console.print(
            f"  throughput {s['candidates_per_minute']:.1f} candidates/min "
            f"({s['evaluated']} evaluated, executor {executor})"
        )
    console.print(
        f"  {s['n_problems']} problems, {s['candidates']} candidates ({s['accepted']} accepted)  "
        f"correct {_pct(s['correct_pct'])}  fast_1 {_pct(_times100(s['fast_1']))}  "
        f"geomean vs eager {_x(s['geomean_speedup_eager'])} over {s['timed_problems']} timed, "
        f"vs compile {_x(s['geomean_speedup_compile'])} over {s['compile_timed_problems']}"
    )
    console.print(
        f"  spend {_usd(spend)} in {spend['calls']} LLM calls, "
        f"{spend['prompt_tokens']} prompt + {spend['completion_tokens']} completion tokens"
    )
    for p in s["problems"]:
        console.print()
        console.print(
            f"[bold]{p['problem_id']}[/bold]  {p['status']}  rounds {p['rounds']}  "
            f"stop: {p['stop_reason'] or '-'}  spend {_usd(p['spend'])}  "
            f"{p['minutes']:.1f} min"
        )
        table = Table(show_edge=False)
        for col in ("candidate", "mode", "parent", "result", "codes", "median ms", "vs eager",
                    "vs compile"):  # fmt: skip
            table.add_column(col, no_wrap=col == "candidate")
        for c in (c for c in candidates if c.problem_id == p["problem_id"]):
            table.add_row(
                c.candidate_id,
                c.mode,
                c.parent_id or "",
                _result(c.accepted),
                ", ".join(c.codes or []),
                "n/a" if c.median_ms is None else f"{c.median_ms:.4f}",
                _interval(c.speedup("speedup_eager")),
                _interval(c.speedup("speedup_compile")),
            )
        console.print(table)
        best = p["best"]
        if best is None:
            console.print("  best: none accepted")
        else:
            timing = (
                f"{best['median_ms']:.4f} ms, " if best["median_ms"] is not None else "untimed, "
            )
            console.print(
                f"  best: {best['candidate_id']} ({best['backend']}, {timing}"
                f"vs eager {_interval(best['speedup_eager'])}, "
                f"vs compile {_interval(best['speedup_compile'])}, on {best['device']})"
            )
    if calls:
        console.print()
        table = Table(title=f"{len(calls)} LLM calls", show_edge=False)
        for col in ("call", "role", "model", "prompt tok", "completion tok", "cost", "latency",
                    "attempts", "status"):  # fmt: skip
            table.add_column(col, no_wrap=col == "call")
        for c in calls:
            table.add_row(
                c.call_id,
                c.role,
                c.model,
                "?" if c.prompt_tokens is None else str(c.prompt_tokens),
                "?" if c.completion_tokens is None else str(c.completion_tokens),
                "unknown" if c.cost_usd is None else f"${c.cost_usd:.4f}",
                "" if c.latency_s is None else f"{c.latency_s:.1f} s",
                "" if c.attempts is None else str(c.attempts),
                "ok" if c.status == "ok" else f"[red]error[/red]: {c.error}",
            )
        console.print(table)


@runs_app.command("export")
def runs_export(
    run_id: Annotated[str, typer.Argument(help="A run id from `kernelloop runs list`, or a path.")],
    run_dir: RunDirOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="csv or json.")] = "csv",
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """One row per candidate: problem, round, id, parent, mode, accepted, reason codes, median ms,
    speedups with their interval bounds, and tokens and cost of the Coder call behind it.

    CSV joins reason codes with ';' and leaves unknown values empty (an unknown cost is empty,
    never 0); JSON keeps codes as a list and unknowns as null.
    """
    import csv
    import io

    from .report import EXPORT_COLUMNS, candidate_rows, find_run
    from .store import RunStore, RunStoreError, list_runs

    if fmt not in ("csv", "json"):
        err.print(f"[red]error:[/red] unknown format {fmt!r}: use --format csv or --format json")
        raise typer.Exit(2)
    folder = runs_dir(run_dir)
    path = find_run(folder, run_id)
    if path is None:
        found = [r["run_id"] for r in list_runs(folder)]
        listing = ", ".join(found) if found else "none"
        err.print(f"[red]error:[/red] no run {run_id!r} in {folder}; runs found: {listing}")
        raise typer.Exit(2)
    try:
        with RunStore.open(path) as store:
            rows = candidate_rows(store)
    except RunStoreError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    if fmt == "json":
        text = json.dumps(rows, indent=1) + "\n"
    else:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({key: _csv_cell(value) for key, value in row.items()})
        text = buffer.getvalue()
    if output is None:
        sys.stdout.write(text)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    err.print(f"wrote {len(rows)} candidates of {path.name} to {output}")


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ";".join(value)
    return value
