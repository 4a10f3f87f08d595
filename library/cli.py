"""``kernelloop library``: list, show, verify, export, import and remove verified kernels.

A thin shell over :mod:`kernelloop.library.store` and :mod:`~kernelloop.library.verify`; they are
imported inside the commands, so registering this sub-app costs nothing at start-up (torch is
loaded by ``verify`` only). Exit codes: 0 success, 1 ``verify`` left an entry stale, 2 unknown
entry, unreadable archive or a refused operation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ..cli_common import JsonOpt, emit, fail

library_app = typer.Typer(help="The verified-kernel library.", no_args_is_help=True)
console = Console()


def _library():
    from .store import Library

    return Library.default()


def _entry_doc(m) -> dict[str, Any]:
    return {**m.to_dict(), "location": m.location, "path": str(m.folder)}


def _x(triple) -> str:
    return "n/a" if not triple else f"{triple[0]:.2f}x [{triple[1]:.2f}, {triple[2]:.2f}]"


def _status(m) -> str:
    if m.stale:
        return f"[red]stale[/red]: {m.stale_reason}"
    if m.untimed:  # verified, never timed: used only by callers who ask for the untimed tier
        return "[yellow]untimed[/yellow]"
    return "[green]ok[/green]"


@library_app.command("list")
def list_cmd(
    op: Annotated[str | None, typer.Option("--op", help="Only this op's entries.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List entries: op, arch, dtype, bucket, speedups with their 95% bounds, status.

    Ops named ``graph.<ops>.<hash>`` are entries for any problem (a captured model subgraph, a
    KernelBench file), keyed by what the problem computes. Status ``untimed`` marks entries
    that were verified but never timed (`kernelloop optimize --allow-untimed` on a CPU).
    """
    lib = _library()
    entries = lib.entries(op)
    if as_json:
        emit([_entry_doc(m) for m in entries])
        return
    # The entry id already says op, arch, dtype and bucket (``<op>-<kernel hash>-<arch>-<dtype>-
    # <bucket>``); repeating them as columns left a graph op's id unreadable at 80 columns.
    table = Table(
        title=f"{len(entries)} entries (user: {lib.user_dir}; shipped with kernelloop)",
        caption="entry: <op>-<kernel hash>-<arch>-<dtype>-<shape bucket>; "
        "untimed: verified on the CPU, never timed, used only with --allow-untimed",
    )
    for col in ("entry", "vs eager", "vs compile", "median ms", "where", "status"):
        table.add_column(col, overflow="fold", ratio=3 if col == "entry" else None)
    for m in entries:
        ms = f"{m.median_ms:.4g}" if m.median_ms is not None else "n/a"
        table.add_row(
            m.entry_id, _x(m.speedup_eager), _x(m.speedup_compile), ms, m.location, _status(m)
        )
    console.print(table)


@library_app.command("show")
def show_cmd(
    entry_id: Annotated[str, typer.Argument(help="An entry id from `kernelloop library list`.")],
    as_json: JsonOpt = False,
) -> None:
    """Print an entry's manifest and kernel source."""
    from rich.syntax import Syntax

    from .store import LibraryError

    lib = _library()
    try:
        m = lib.get(entry_id)
        source = lib.source(entry_id)
    except LibraryError as exc:
        raise fail(str(exc)) from None
    if as_json:
        emit({"manifest": _entry_doc(m), "source": source})
        return
    console.print(f"[bold]{m.entry_id}[/bold] ({m.location}, {m.folder})")
    console.print(f"op {m.op}, {m.backend or 'unknown'} backend, {m.arch}, {m.dtype}, {m.bucket}")
    console.print(m.describe())
    console.print(f"status: {_status(m)}")
    prov, ver = m.provenance, m.verification
    console.print(
        f"provenance: problem {prov.problem_id} (size {prov.size}), run {prov.run_id}, "
        f"candidate {prov.candidate_id}"
    )
    console.print(f"verified {ver.verified_at} on {ver.device}")
    console.print("environment: " + ", ".join(f"{k} {v}" for k, v in m.env.items()))
    console.print(Syntax(source, "python", line_numbers=True))


@library_app.command("verify")
def verify_cmd(
    entry_ids: Annotated[
        list[str] | None, typer.Argument(help="Entries to check (default: all).")
    ] = None,
    changed_only: Annotated[
        bool,
        typer.Option("--changed-only", help="Re-run only entries whose environment changed."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Re-validate entries: mark stale where the environment changed, re-run the evaluator.

    Exit status 1 when an entry is stale afterwards.
    """
    from .store import LibraryError
    from .verify import verify

    try:
        results = verify(_library(), entry_ids=entry_ids or None, changed_only=changed_only)
    except LibraryError as exc:
        raise fail(str(exc)) from None
    if as_json:
        emit(results)
    else:
        table = Table(title=f"verified {len(results)} entries")
        for col in ("entry", "where", "changed", "re-run", "status"):
            table.add_column(col, overflow="fold")
        for r in results:
            changed = ", ".join(f"{k} {a} -> {b}" for k, (a, b) in r["changed"].items())
            ran = "no" if not r["ran"] else ("accepted" if r["accepted"] else "rejected")
            status = f"[red]stale[/red]: {r['reason']}" if r["stale"] else "[green]ok[/green]"
            if r["note"]:
                status += f" ({r['note']})"
            table.add_row(r["entry_id"], r["location"], changed or "-", ran, status)
        console.print(table)
    raise typer.Exit(1 if any(r["stale"] for r in results) else 0)


@library_app.command("export")
def export_cmd(
    dest: Annotated[Path, typer.Argument(help="The .tar.gz file to write.")],
    entry_ids: Annotated[
        list[str] | None, typer.Argument(help="Entries to export (default: all).")
    ] = None,
) -> None:
    """Write entries to a .tar.gz that `kernelloop library import` reads."""
    from .store import LibraryError

    lib = _library()
    try:
        count = len(entry_ids) if entry_ids else len(lib.entries())
        path = lib.export(entry_ids or None, dest)
    except LibraryError as exc:
        raise fail(str(exc)) from None
    console.print(f"exported {count} entries to {path}")


@library_app.command("import")
def import_cmd(
    archive: Annotated[Path, typer.Argument(help="A .tar.gz from `kernelloop library export`.")],
) -> None:
    """Add the entries of an exported archive to your library (all or nothing)."""
    from .store import LibraryError

    if not archive.is_file():
        raise fail(f"no such archive: {archive}")
    try:
        added = _library().import_(archive)
    except LibraryError as exc:
        raise fail(str(exc)) from None
    for m in added:
        console.print(f"imported {m.entry_id}: {m.describe()}")
    console.print(
        f"{len(added)} entries imported; they were verified elsewhere: run "
        "`kernelloop library verify` on this machine before relying on them"
    )


@library_app.command("remove")
def remove_cmd(
    entry_id: Annotated[str, typer.Argument(help="A user library entry id.")],
) -> None:
    """Delete an entry from your library (shipped entries cannot be removed)."""
    from .store import LibraryError

    try:
        m = _library().remove(entry_id)
    except LibraryError as exc:
        raise fail(str(exc)) from None
    console.print(f"removed {m.entry_id} ({m.op}, {m.arch}, {m.dtype}, {m.bucket})")
