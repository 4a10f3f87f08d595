"""What every command module shares: the error console and exit, option types, and the helpers
that turn arguments into problems, ``--set`` values and the runs folder. One home, so each
command module imports it and none imports another (``cli`` <-> ``profile_cli`` was a loop)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

err = Console(stderr=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print exactly one JSON document.")]
RunDirOpt = Annotated[
    Path | None,
    typer.Option("--run-dir", help="Folder of runs (default: KERNELLOOP_RUNS_DIR, else ./runs)."),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set", help="Override a module constant, e.g. --set batch_size=16 (repeatable)."
    ),
]
SizeOpt = Annotated[
    str | None,
    typer.Option(
        "--size",
        help="Size profile: gpu (the file's own constants; default on a GPU), cpu (declared in "
        "SIZES), auto (derived for a CPU by shrinking the size constants; the CPU default when "
        "no cpu size is declared), or another name in SIZES.",
    ),
]


def fail(message: str) -> typer.Exit:
    """Print ``error: message`` and return the usage-error exit (status 2) to raise."""
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(2)


def emit(doc: Any) -> None:
    """One JSON document on stdout (``--json``)."""
    sys.stdout.write(json.dumps(doc, default=str) + "\n")


def parse_sets(values: list[str] | None) -> dict:
    from .kernelbench.problem import parse_value

    out = {}
    for item in values or []:
        if "=" not in item:
            raise fail(f"--set expects NAME=VALUE, got {item!r}")
        name, value = item.split("=", 1)
        out[name.strip()] = parse_value(value.strip())
    return out


def load_problem(spec: str, command: str = "this command"):
    """Exactly one problem for ``spec``, or a usage error that says why."""
    from .kernelbench import loader
    from .kernelbench.problem import ProblemError

    try:
        found = loader.load(spec)
    except ProblemError as exc:
        raise fail(str(exc)) from None
    if len(found) != 1:
        raise fail(f"{spec!r} names {len(found)} problems; {command} takes one")
    return found[0]


def runs_dir(run_dir: Path | None) -> Path:
    if run_dir is not None:
        return run_dir
    from . import settings

    return settings.get().runs_dir
