"""``kernelloop dashboard`` and ``kernelloop report``: the run store as web pages or one HTML file.

Thin shells over :mod:`kernelloop.dashboard`. FastAPI, uvicorn, Jinja2 and Plotly (the
``dashboard`` extra) are imported inside the commands, so ``kernelloop --help`` stays instant and
works without the extra. Exit codes: 0 success, 2 unknown run, unreadable run or missing extra.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from .cli_common import RunDirOpt, err, fail, runs_dir

console = Console()

OutputOpt = Annotated[Path, typer.Option("-o", "--output", help="The HTML file to write.")]
_EXTRA = "install the dashboard extra: pip install 'kernelloop[dashboard]'"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def dashboard_cmd(
    run_dir: RunDirOpt = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8765,
) -> None:
    """Serve read-only dashboards over the run store: campaigns, problems, candidates, library.

    Pages of a running campaign refresh themselves every few seconds. There is no login: keep the
    default 127.0.0.1 unless everyone who can reach the address may read prompts and kernels.
    """
    try:
        import plotly  # noqa: F401  (charts are drawn per request; fail here, not on a page)
        import uvicorn

        from .dashboard.app import create_app
    except ImportError as exc:
        raise fail(f"the dashboard needs {exc.name}: {_EXTRA}") from None
    folder = runs_dir(run_dir)
    if not folder.is_dir():
        err.print(f"[yellow]note:[/yellow] {folder} does not exist yet; the list stays empty")
    if not _is_loopback(host):
        err.print(
            f"[yellow]warning:[/yellow] serving on {host}: anyone who can reach it can read every "
            "run's prompts, kernels and spend (the dashboard has no login)"
        )
    console.print(f"kernelloop dashboard: http://{host}:{port}/  (runs in {folder}; Ctrl-C stops)")
    uvicorn.run(create_app(folder), host=host, port=port, log_level="warning")


def report_cmd(
    run_id: Annotated[str, typer.Argument(help="A run id from `kernelloop runs list`, or a path.")],
    run_dir: RunDirOpt = None,
    output: OutputOpt = Path("report.html"),
) -> None:
    """Write one run's campaign page as a single self-contained HTML file.

    CSS and Plotly are inline and nothing is fetched when the file is opened: for sharing and
    for CI artifacts.
    """
    try:
        import plotly  # noqa: F401

        from .dashboard.report import write_report
    except ImportError as exc:
        raise fail(f"the report needs {exc.name}: {_EXTRA}") from None
    from .runs.report import find_run
    from .runs.store import RunStore, RunStoreError, list_runs

    folder = runs_dir(run_dir)
    path = find_run(folder, run_id)
    if path is None:
        found = ", ".join(r["run_id"] for r in list_runs(folder)) or "none"
        raise fail(f"no run {run_id!r} in {folder}; runs found: {found}")
    try:
        with RunStore.open(path) as store:
            written = write_report(store, output)
    except RunStoreError as exc:
        raise fail(str(exc)) from None
    size_mb = written.stat().st_size / 1e6
    console.print(f"wrote {written} ({size_mb:.1f} MB, self-contained)")
