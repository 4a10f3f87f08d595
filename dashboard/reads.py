"""Store readers: each gathers what one dashboard page needs from a run and builds its model.

The ``read_*`` functions are the only dashboard code that touches a store; they read through
:class:`RunStore`'s public read methods and the run's artifact files, then hand the rows to the
pure page builders of :mod:`.views` as plain dicts (``to_dict()``: the public JSON form, which
the pages and their JSON keep). Nothing here writes.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

from ..runs.report import candidates_with_calls
from ..runs.schema import DATABASE
from ..runs.store import RunStore, RunStoreError
from .views import (
    campaign_page,
    campaign_row,
    campaigns_page,
    candidate_page,
    problem_page,
    run_devices,
    unreadable_row,
)

_FENCE = re.compile(r"```python[^\n]*\n(.*?)```", re.DOTALL)


# --- campaigns -----------------------------------------------------------------------------------
def read_campaigns(run_dir: Path) -> dict:
    run_dir = Path(run_dir)
    rows = []
    folders = sorted(run_dir.iterdir()) if run_dir.is_dir() else []
    for path in folders:
        if not (path / DATABASE).is_file():
            continue
        try:
            with RunStore.open(path) as store:
                candidates = _dicts(store.candidates())
                rows.append(campaign_row(store.summary(), run_devices(candidates)))
        except (RunStoreError, sqlite3.Error, OSError, ValueError, KeyError) as exc:
            # One broken run is listed with its error (as `runs list` does), not allowed to take
            # the page down.
            rows.append(unreadable_row(path.name, str(exc)))
    return campaigns_page(rows, str(run_dir))


# --- one campaign --------------------------------------------------------------------------------
def read_campaign(store: RunStore) -> dict:
    return campaign_page(
        store.summary(),
        _dicts(store.candidates()),
        _dicts(store.events()),
        store.last_activity(),
    )


def _dicts(rows: list) -> list[dict]:
    return [r.to_dict() for r in rows]


# --- one problem ---------------------------------------------------------------------------------
def extract_problem_source(messages: list[dict]) -> str | None:
    """The problem as a Coder request showed it: the first ```python block of the first user
    message (the prompt templates put ``$problem_source`` first)."""
    for m in messages:
        if m.get("role") == "user" and isinstance(m.get("content"), str):
            match = _FENCE.search(m["content"])
            return match.group(1) if match else None
    return None


def read_reference(store: RunStore, problem_id: str) -> dict | None:
    """The reference source: as this run sent it to the Coder (what the campaign optimised),
    else the bundled problem file as it is now; None when neither is available."""
    for call in store.llm_calls(problem_id):
        if call.role != "coder":
            continue
        try:
            request = json.loads((store.path / call.request_path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        source = extract_problem_source(request.get("messages") or [])
        if source:
            return {
                "source": source,
                "origin": f"as sent to the Coder in {call.call_id} (hold-out sizes removed, "
                "size constants as evaluated)",
            }
    from ..kernelbench import loader
    from ..kernelbench.problem import ProblemError

    if problem_id in loader.bundled_ids():
        try:
            problem = loader.load_one(problem_id)
        except (ProblemError, OSError):
            return None
        return {
            "source": problem.source,
            "origin": f"the bundled problem file {problem.path} as it is now (the run recorded "
            "no Coder request for this problem)",
        }
    return None


def read_problem(store: RunStore, problem_id: str) -> dict | None:
    summary = store.summary()
    if not any(p["problem_id"] == problem_id for p in summary["problems"]):
        return None
    rows = [r for r in candidates_with_calls(store) if r["problem_id"] == problem_id]
    return problem_page(
        summary,
        problem_id,
        rows,
        _dicts(store.advice(problem_id)),
        _dicts(store.events(problem_id)),
        read_reference(store, problem_id),
    )


# --- one candidate -------------------------------------------------------------------------------
def _read_text(store: RunStore, relative: str | None) -> str | None:
    if not relative:
        return None
    try:
        return (store.path / relative).read_text(encoding="utf-8")
    except OSError:
        return None


def read_candidate(store: RunStore, candidate_id: str) -> dict | None:
    from ..feedback import gpu_specs

    candidate = store.candidate(candidate_id)
    if candidate is None:
        return None
    pid = candidate.problem_id
    siblings = [r for r in candidates_with_calls(store) if r["problem_id"] == pid]
    row = next(r for r in siblings if r["candidate_id"] == candidate_id)
    verdict = store.verdict_for(candidate_id)
    parent = store.candidate(candidate.parent_id) if candidate.parent_id else None
    bandwidth = None
    if verdict and verdict.timing:
        spec = gpu_specs.lookup(verdict.timing.gpu)
        bandwidth = spec.mem_bandwidth_gbs if spec else None
    return candidate_page(
        store.summary(),
        row,
        verdict.to_dict() if verdict else None,
        _read_text(store, candidate.source_path),
        _read_text(store, parent.source_path) if parent else None,
        siblings,
        _dicts(store.advice(pid)),
        _dicts(store.llm_calls(pid)),
        _read_text(store, str(Path(candidate.verdict_path).with_name("build.log")))
        if candidate.verdict_path
        else None,
        bandwidth,
    )


# --- library -------------------------------------------------------------------------------------
def known_runs(run_dir: Path) -> set[str]:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return set()
    return {p.name for p in run_dir.iterdir() if (p / DATABASE).is_file()}


__all__ = [
    "known_runs",
    "read_campaign",
    "read_campaigns",
    "read_candidate",
    "read_problem",
    "read_reference",
]
