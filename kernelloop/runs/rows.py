"""The rows a run store hands its readers: one frozen dataclass per table, one field per column.

The columns are documented in :mod:`.schema`; a field's comment here says only what the reader
gets that the column does not say (a JSON column arrives parsed, ``accepted`` as a bool).
``to_dict()`` is the row as the public JSON shows it (``kernelloop runs show --json``, the
dashboard): the columns in table order, unchanged since rows were plain dicts.

Rows are built with :func:`from_db`, which reads a column a run folder may lack as None: a run
written before a column was added (an older :data:`~.schema.SCHEMA_VERSION`) still opens.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, TypeVar

__all__ = ["AdviceRow", "CandidateRow", "EventRow", "LlmCallRow", "ProblemRow", "StoredCall"]


@dataclasses.dataclass(frozen=True)
class ProblemRow:
    problem_id: str
    status: str  # running | solved | unsolved | finished | failed | interrupted
    rounds_done: int
    best_candidate_id: str | None  # kept current as verdicts arrive
    started_at: str
    finished_at: str | None
    stop_reason: str | None  # 'rounds: 3 done', 'plateau: ...', a halt's reason

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class CandidateRow:
    candidate_id: str
    problem_id: str
    round: int
    idx: int  # position within the round
    parent_id: str | None  # the kernel it branched from
    mode: str  # baseline | initial | repair | optimize
    source_sha256: str
    source_path: str  # relative to the run folder
    created_at: str
    accepted: bool | None  # None: not evaluated yet
    codes: list[str] | None  # reason codes, [] when accepted; None before the verdict
    backend: str | None
    device: str | None
    median_ms: float | None  # None without a GPU
    speedup_eager: float | None  # point estimate; the interval bounds follow
    speedup_eager_low: float | None
    speedup_eager_high: float | None
    speedup_compile: float | None
    speedup_compile_low: float | None
    speedup_compile_high: float | None
    verdict_path: str | None  # relative to the run folder; None before the verdict
    evaluated_at: str | None
    # The builtin coder's record of what it emitted ({"templates", "configs", "plan"}), which its
    # judge searches over; None for any other Coder's kernel and in runs from before schema 2.
    builtin_config: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The public JSON form. ``builtin_config`` is left out: it is the builtin search's
        working state, not a result, and the JSON of runs and the dashboard must not change."""
        out = dataclasses.asdict(self)
        del out["builtin_config"]
        return out

    def speedup(self, name: str) -> dict[str, float] | None:
        """``{point, low, high}`` for ``speedup_eager`` or ``speedup_compile``; None untimed."""
        point = getattr(self, name)
        if point is None:
            return None
        low, high = getattr(self, f"{name}_low"), getattr(self, f"{name}_high")
        return {"point": point, "low": low, "high": high}


@dataclasses.dataclass(frozen=True)
class LlmCallRow:
    call_id: str
    idem_key: str | None  # None on an attempt a retry superseded
    problem_id: str
    round: int
    role: str  # coder | judge
    model: str  # as configured; the reply file names the server's model
    prompt_tokens: int | None  # None when the provider did not say
    completion_tokens: int | None
    cost_usd: float | None  # None when the price is unknown, never 0 for that
    latency_s: float | None
    attempts: int | None
    status: str  # ok | error
    error: str | None
    request_path: str
    response_path: str | None  # None: no reply came back
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class StoredCall:
    """A recorded call found by its idempotency key, with the reply it got (``--resume``)."""

    call: LlmCallRow
    result: dict[str, Any] | None  # the stored LLMResult dict; None when no reply came back
    text: str | None  # the reply's text, from ``result``

    @property
    def ok(self) -> bool:
        """Whether the reply may be reused instead of paying for the completion again."""
        return self.call.status == "ok"


@dataclasses.dataclass(frozen=True)
class AdviceRow:
    id: int
    problem_id: str
    round: int
    candidate_id: str | None  # the candidate it is about; None for a round's repair advice
    mode: str  # repair | optimize
    advice: dict[str, Any]  # the Judge's JSON object, parsed
    llm_call_id: str | None
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class EventRow:
    id: int  # increasing: pass the last seen one as ``after_id`` to follow a live run
    ts: str
    problem_id: str | None  # None for a run-level event
    kind: str
    payload: dict[str, Any]  # parsed

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


Row = TypeVar("Row")
# Columns stored as JSON text, parsed on the way out.
_JSON_COLUMNS = ("codes", "builtin_config", "advice", "payload")


def from_db(cls: type[Row], row: dict[str, Any]) -> Row:
    """A row of ``cls`` from a database row; a column the database lacks reads as None."""
    values = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        value = row.get(field.name)
        if field.name in _JSON_COLUMNS and value is not None:
            value = json.loads(value)
        values[field.name] = value
    if "accepted" in values and values["accepted"] is not None:
        values["accepted"] = bool(values["accepted"])  # SQLite stores 0/1
    return cls(**values)
