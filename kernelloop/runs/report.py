"""Runs in numbers: one run's summary and how a run is scored (``store.list_runs`` opens
every run of a folder and summarises each with this module).

Reads only through :class:`~kernelloop.runs.store.RunStore`'s methods (no SQL here). The scores
follow KernelBench's definitions, stated over the problems a run started, each represented by its
best accepted candidate (:meth:`RunStore.best_candidate`):

- ``correct_pct``: percent of problems with at least one accepted (verified) candidate.
- ``fast_1``: share (0 to 1) of problems whose best candidate is faster than eager PyTorch with
  confidence: the lower bound of its speedup interval is above 1.0. A point estimate above 1.0
  inside the noise does not count, and a problem without a GPU timing never counts; None when
  no problem of the run was timed at all.
- ``geomean_speedup_eager`` / ``geomean_speedup_compile``: geometric mean of the best candidates'
  point speedups over the problems that have that timing (``timed_problems`` /
  ``compile_timed_problems`` say how many). None when no problem has one: a CPU run has no speedup.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .rows import CandidateRow
    from .store import RunStore


def summarize(store: RunStore) -> dict:
    """Run-level facts and scores, then one entry per problem (``problems``)."""
    meta = store.meta()
    config = store.config()
    calls = store.llm_calls()
    problems = []
    for p in store.problems():
        pid = p.problem_id
        cands = store.candidates(pid)
        # Rounds whose Coder produced no code leave LLM calls but no candidates.
        rounds_seen = {c.round for c in cands}
        rounds_seen |= {c.round for c in calls if c.problem_id == pid}
        end = p.finished_at or store.last_activity(pid) or p.started_at
        problems.append(
            {
                "problem_id": pid,
                "status": p.status,
                "stop_reason": p.stop_reason,
                "rounds_done": p.rounds_done,
                "rounds": max(p.rounds_done, len(rounds_seen)),
                "candidates": len(cands),
                "evaluated": sum(c.accepted is not None for c in cands),
                "accepted": sum(bool(c.accepted) for c in cands),
                "best": best_dict(store.best_candidate(pid)),
                "spend": store.spend(pid),
                "started_at": p.started_at,
                "finished_at": p.finished_at,
                "minutes": minutes_between(p.started_at, end),
            }
        )
    end = meta.get("finished_at") or store.last_activity() or meta["created_at"]
    minutes = (
        active_seconds(meta, end) / 60
        if "active_s" in meta or "sitting_started_at" in meta
        else minutes_between(meta["created_at"], end)  # a run from before sittings were kept
    )
    evaluated = sum(p["evaluated"] for p in problems)
    return {
        "run_id": store.run_id,
        "path": str(store.path),
        "schema_version": int(meta["schema_version"]),
        "kernelloop_version": meta.get("kernelloop_version"),
        "status": meta["status"],
        "created_at": meta["created_at"],
        "finished_at": meta.get("finished_at"),
        "minutes": minutes,
        # Throughput: candidates evaluated per minute of the run's wall time (LLM time included,
        # it is what a campaign delivers); compare executors on the same problems and models.
        "candidates_per_minute": round(evaluated / minutes, 2) if evaluated and minutes else None,
        "config": config,
        "models": models(config, [c.model for c in calls]),
        "spend": store.spend(),
        "n_problems": len(problems),
        "candidates": sum(p["candidates"] for p in problems),
        "evaluated": evaluated,
        "accepted": sum(p["accepted"] for p in problems),
        **run_metrics([p["best"] for p in problems]),
        "problems": problems,
    }


# --- scores -------------------------------------------------------------------------------------
def run_metrics(bests: list[dict | None]) -> dict:
    """Scores from one entry per problem: its :func:`best_dict`, or None when none was accepted."""
    found = [b for b in bests if b is not None]
    eager = [b["speedup_eager"] for b in found if b["speedup_eager"]]
    compile_ = [b["speedup_compile"] for b in found if b["speedup_compile"]]
    return {
        "correct_pct": _pct(len(found), len(bests)),
        # None, not 0, when nothing was timed: "not measured" must not read as "measured slow".
        "fast_1": _share(sum(iv["low"] > 1.0 for iv in eager), len(bests)) if eager else None,
        "geomean_speedup_eager": geomean(iv["point"] for iv in eager),
        "geomean_speedup_compile": geomean(iv["point"] for iv in compile_),
        "timed_problems": len(eager),
        "compile_timed_problems": len(compile_),
    }


def best_dict(row: CandidateRow | None) -> dict | None:
    """A candidate row cut to what a report shows, speedups as ``{point, low, high}``."""
    if row is None:
        return None
    return {
        "candidate_id": row.candidate_id,
        "round": row.round,
        "mode": row.mode,
        "backend": row.backend,
        "device": row.device,
        "median_ms": row.median_ms,
        "speedup_eager": row.speedup("speedup_eager"),
        "speedup_compile": row.speedup("speedup_compile"),
    }


def geomean(values: Iterable[float]) -> float | None:
    """Geometric mean of positive numbers; None for none."""
    logs = [math.log(v) for v in values]
    return math.exp(sum(logs) / len(logs)) if logs else None


def active_seconds(meta: dict[str, str], end: str) -> float:
    """Seconds the run has been running: finished sittings, plus the current one up to ``end``
    (the last activity, when a sitting was killed without closing)."""
    done = float(meta.get("active_s") or 0.0)
    if "sitting_started_at" in meta:
        done += max(minutes_between(meta["sitting_started_at"], end) * 60, 0.0)
    return round(done, 3)


def minutes_between(start: str, end: str) -> float:
    """Minutes between two stored ISO timestamps."""
    delta = datetime.fromisoformat(end) - datetime.fromisoformat(start)
    return max(delta.total_seconds(), 0.0) / 60


def models(config: dict, called: list[str]) -> list[str]:
    """The models a run uses: as configured (``models``, or ``coder`` and ``judge``), else the
    ones its LLM calls name; unique, in first-seen order."""
    named = config.get("models")
    if isinstance(named, dict):
        found = list(named.values())
    elif isinstance(named, str):
        found = [named]
    elif isinstance(named, list):
        found = list(named)
    else:
        found = [config.get("coder"), config.get("judge")]
    found = [m for m in found if isinstance(m, str) and m] or called
    return list(dict.fromkeys(found))


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _pct(part: int, whole: int) -> float | None:
    return 100.0 * part / whole if whole else None


# --- one row per candidate (``kernelloop runs export``, the dashboard's tables) -----------------
EXPORT_COLUMNS = (
    "problem_id",
    "round",
    "candidate_id",
    "parent_id",
    "mode",
    "accepted",
    "codes",
    "backend",
    "device",
    "median_ms",
    "speedup_eager",
    "speedup_eager_low",
    "speedup_eager_high",
    "speedup_compile",
    "speedup_compile_low",
    "speedup_compile_high",
    "coder_call_id",
    "coder_model",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
)


def coder_call_key(problem_id: str, round: int, idx: int) -> str:
    """The idempotency key a campaign records a candidate's Coder call under.

    It mirrors ``CampaignContext.llm`` (``<problem>|r<round>|<role>|<slot>``, the Coder's slot
    being ``c<idx>``): that key, not the call id, ties a reply to the candidate it produced,
    because the K Coder calls of a round finish in any order.
    """
    return f"{problem_id}|r{round}|coder|c{idx}"


def candidates_with_calls(store: RunStore) -> list[dict]:
    """Every candidate row as the public JSON shows it (:meth:`CandidateRow.to_dict`) plus the
    Coder call that wrote it: ``coder_call_id``, ``coder_model``, ``prompt_tokens``,
    ``completion_tokens``, ``cost_usd`` (None when the price is unknown, never 0 for that; all
    None when no call is on record)."""
    calls = {c.idem_key: c for c in store.llm_calls() if c.idem_key}
    rows = []
    for c in store.candidates():
        call = calls.get(coder_call_key(c.problem_id, c.round, c.idx))
        rows.append(
            {
                **c.to_dict(),
                "codes": list(c.codes or []),
                "coder_call_id": call.call_id if call else None,
                "coder_model": call.model if call else None,
                "prompt_tokens": call.prompt_tokens if call else None,
                "completion_tokens": call.completion_tokens if call else None,
                "cost_usd": call.cost_usd if call else None,
            }
        )
    return rows


def candidate_rows(store: RunStore) -> list[dict]:
    """:func:`candidates_with_calls` cut to :data:`EXPORT_COLUMNS`, in that order."""
    return [{key: row[key] for key in EXPORT_COLUMNS} for row in candidates_with_calls(store)]


def find_run(runs_dir: Path, run_id: str) -> Path | None:
    """The run folder named by ``run_id``: a run folder's own path, or a run id under
    ``runs_dir``; None when neither holds a run database."""
    from .schema import DATABASE

    given = Path(run_id)
    if (given / DATABASE).is_file():
        return given
    if given.name != run_id or run_id in (".", ".."):
        return None  # an id is one folder name, never a path out of runs_dir
    path = Path(runs_dir) / run_id
    return path if (path / DATABASE).is_file() else None
