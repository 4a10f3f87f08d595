"""The dashboard server: FastAPI routes that render :mod:`.views` page models with Jinja2.

Read-only over a folder of runs: every request opens the run it needs, reads through the
:class:`~kernelloop.runs.store.RunStore` read methods and closes it again (SQLite's WAL mode lets
a campaign keep writing meanwhile). Pages of a running campaign reload themselves every few
seconds. plotly.min.js and the stylesheet are served from the installed packages, so the
dashboard works without network.

Routes::

    /                                          campaigns
    /runs/{run_id}                             one campaign
    /runs/{run_id}/problems/{problem_id:path}  one problem (ids hold slashes: level1/01_relu)
    /runs/{run_id}/candidates/{candidate_id}   one candidate
    /runs/{run_id}/report.html                 the campaign as one self-contained HTML file
    /library                                   the verified-kernel library
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from starlette.exceptions import HTTPException

from ..runs.schema import DATABASE
from ..runs.store import RunStore, RunStoreError
from . import charts, reads, views
from .render import plotly_js, render, stylesheet


class _PageError(Exception):
    def __init__(self, status_code: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status_code, self.title, self.message = status_code, title, message


def _page(template: str, page: dict, chart_divs: dict | None = None, status: int = 200):
    html = render(
        template,
        page=page,
        charts=chart_divs or {},
        refresh=bool(page.get("refresh") or (page.get("run") or {}).get("refresh")),
    )
    return HTMLResponse(html, status_code=status)


def create_app(run_dir: Path, *, library=None) -> FastAPI:
    """The dashboard over the runs in ``run_dir``; ``library`` (a
    :class:`kernelloop.library.store.Library`) defaults to ``Library.default()`` per request."""
    run_dir = Path(run_dir)
    app = FastAPI(title="kernelloop dashboard", docs_url=None, redoc_url=None, openapi_url=None)

    @contextlib.contextmanager
    def open_run(run_id: str) -> Iterator[RunStore]:
        # A run id is one folder name directly under run_dir: never a path out of it.
        path = run_dir / run_id
        if "/" in run_id or run_id in (".", "..") or not (path / DATABASE).is_file():
            raise _PageError(
                404, "No such run", f"There is no run {run_id!r} in {run_dir}; see the list."
            )
        try:
            store = RunStore.open(path)
        except RunStoreError as exc:
            raise _PageError(500, "Unreadable run", str(exc)) from None
        try:
            yield store
        except (sqlite3.Error, ValueError, OSError) as exc:
            raise _PageError(
                500, "Unreadable run", f"{run_id} could not be read: {type(exc).__name__}: {exc}"
            ) from None
        finally:
            store.close()

    @app.exception_handler(_PageError)
    def page_error(request: Request, exc: _PageError) -> HTMLResponse:
        return HTMLResponse(
            render("error.html", page={}, charts={}, refresh=False, status_code=exc.status_code,
                   title=exc.title, message=exc.message),
            status_code=exc.status_code,
        )  # fmt: skip

    @app.exception_handler(HTTPException)
    def http_error(request: Request, exc: HTTPException) -> HTMLResponse:
        return HTMLResponse(
            render("error.html", page={}, charts={}, refresh=False, status_code=exc.status_code,
                   title=f"{exc.status_code}", message=str(exc.detail)),
            status_code=exc.status_code,
        )  # fmt: skip

    # Plain `def` routes: FastAPI runs them in its thread pool, so SQLite reads never block the
    # event loop.
    @app.get("/", response_class=HTMLResponse)
    def campaigns() -> HTMLResponse:
        return _page("campaigns.html", reads.read_campaigns(run_dir))

    @app.get("/runs/{run_id}", response_class=HTMLResponse)
    def campaign(run_id: str) -> HTMLResponse:
        with open_run(run_id) as store:
            page = reads.read_campaign(store)
        return _page("campaign.html", page, charts.campaign_charts(page))

    @app.get("/runs/{run_id}/report.html")
    def report(run_id: str) -> HTMLResponse:
        from .report import render_report

        with open_run(run_id) as store:
            html = render_report(store)
        disposition = f'attachment; filename="kernelloop-{store.run_id}.html"'
        return HTMLResponse(html, headers={"Content-Disposition": disposition})

    @app.get("/runs/{run_id}/problems/{problem_id:path}", response_class=HTMLResponse)
    def problem(run_id: str, problem_id: str) -> HTMLResponse:
        with open_run(run_id) as store:
            page = reads.read_problem(store, problem_id)
        if page is None:
            raise _PageError(404, "No such problem", f"Run {run_id} has no problem {problem_id!r}.")
        return _page("problem.html", page, charts.problem_charts(page))

    @app.get("/runs/{run_id}/candidates/{candidate_id}", response_class=HTMLResponse)
    def candidate(run_id: str, candidate_id: str) -> HTMLResponse:
        with open_run(run_id) as store:
            page = reads.read_candidate(store, candidate_id)
        if page is None:
            raise _PageError(
                404, "No such candidate", f"Run {run_id} has no candidate {candidate_id!r}."
            )
        return _page("candidate.html", page, charts.candidate_charts(page))

    @app.get("/library", response_class=HTMLResponse)
    def library_page() -> HTMLResponse:
        from ..library.store import Library

        lib = library or Library.default()
        page = views.library_page(lib.entries(), str(lib.user_dir), reads.known_runs(run_dir))
        return _page("library.html", page)

    @app.get("/static/style.css")
    def css() -> Response:
        return Response(stylesheet(), media_type="text/css", headers=_CACHE)

    @app.get("/static/plotly.min.js")
    def plotly() -> Response:
        return Response(plotly_js(), media_type="application/javascript", headers=_CACHE)

    return app


_CACHE = {"Cache-Control": "public, max-age=3600"}
