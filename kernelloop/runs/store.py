"""The run store: everything a campaign writes, in one SQLite file plus artifact files.

A campaign makes a run with :meth:`RunStore.create`, then per problem calls
:meth:`~RunStore.start_problem`, :meth:`~RunStore.add_candidate` and
:meth:`~RunStore.record_verdict` for each kernel, :meth:`~RunStore.record_llm_call` for each
model request, :meth:`~RunStore.add_advice` for the Judge's answer, :meth:`~RunStore.event` for
progress lines, and :meth:`~RunStore.finish_problem`. ``--resume`` reopens the run with
:meth:`RunStore.open` and asks :meth:`~RunStore.verdict_for` and :meth:`~RunStore.find_llm_call`
before repeating work, so a crash never costs a second evaluation or a second paid completion.
The CLI and the dashboard read through :meth:`~RunStore.summary`, the listing methods and
:func:`list_runs`; no other module holds SQL for this database. The layout of a run folder and
every column are documented in :mod:`kernelloop.runs.schema`.

One ``RunStore`` holds one SQLite connection guarded by a lock, so the campaign's worker threads
may share it. Artifact files are written before the row that points at them, so a row never names
a missing file; files are replaced atomically, so a reader never sees half of one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import __version__
from ..sandbox.verdict import Verdict
from . import sql
from .report import list_runs, summarize
from .schema import (
    ADVICE_MODES,
    CANDIDATE_MODES,
    CANDIDATES_DIR,
    DATABASE,
    DDL,
    LLM_DIR,
    LLM_ROLES,
    PROBLEM_STATUSES,
    RUN_STATUSES,
    SCHEMA_VERSION,
)

__all__ = ["RunNotFound", "RunStore", "RunStoreError", "list_runs", "new_run_id", "slug"]


class RunStoreError(Exception):
    """A run folder that cannot be created or read; the message says what to do about it."""


class RunNotFound(RunStoreError):
    """No run database at the given path."""


_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def slug(problem_id: str) -> str:
    """A file-name-safe form of a problem id: ``level1/01_relu`` -> ``level1-01-relu``."""
    return re.sub(r"[^a-z0-9]+", "-", problem_id.lower()).strip("-") or "problem"


def new_run_id(now: datetime | None = None) -> str:
    """UTC timestamp plus a short random suffix (two runs started in one second differ)."""
    return f"{(now or datetime.now(UTC)):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class RunStore:
    """One campaign run: ``<runs_dir>/<run_id>/run.sqlite`` plus its artifact files."""

    SCHEMA_VERSION = SCHEMA_VERSION

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        """Use :meth:`create` or :meth:`open`."""
        self.path = path
        self.run_id = path.name
        self._conn = conn
        self._lock = threading.RLock()
        self._closed = False

    # --- opening ---------------------------------------------------------------------------------
    @classmethod
    def create(cls, runs_dir: Path, config: dict, run_id: str | None = None) -> RunStore:
        """Make a new run folder under ``runs_dir``; never touches an existing one."""
        run_id = run_id or new_run_id()
        if not _RUN_ID.fullmatch(run_id):
            raise ValueError(
                f"run id {run_id!r} is not a plain folder name: use letters, digits, '.', '_', '-'"
            )
        config_json = json.dumps(config, sort_keys=True, default=str)
        runs_dir = Path(runs_dir).resolve()
        runs_dir.mkdir(parents=True, exist_ok=True)
        path = runs_dir / run_id
        try:
            path.mkdir()  # atomic: two campaigns cannot both claim the folder
        except FileExistsError:
            raise RunStoreError(
                f"{path} already exists; resume it (kernelloop optimize --resume {run_id}) "
                "or choose another run id"
            ) from None
        conn = sql.connect(path / DATABASE)
        conn.executescript(f"BEGIN;\n{DDL}\nCOMMIT;")
        store = cls(path, conn)
        with store._tx() as db:
            for key, value in (
                ("schema_version", str(SCHEMA_VERSION)),
                ("created_at", _now()),
                ("status", "running"),
                ("config", config_json),
                ("kernelloop_version", __version__),
            ):
                db.execute(sql.SET_META, (key, value, value))
        return store

    @classmethod
    def open(cls, path: Path) -> RunStore:
        """An existing run folder (``--resume``, ``kernelloop runs show``, the dashboard)."""
        path = Path(path)
        db = path / DATABASE
        if not db.is_file():
            raise RunNotFound(
                f"no run at {path}: {DATABASE} is missing (see `kernelloop runs list`)"
            )
        try:
            conn = sql.connect(db)
        except sqlite3.DatabaseError as exc:
            raise RunStoreError(f"{db} is not a readable kernelloop run database: {exc}") from None
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise RunStoreError(f"{db} is not a readable kernelloop run database: {exc}") from None
        version = int(row["value"]) if row and str(row["value"]).isdigit() else 0
        if not 1 <= version <= SCHEMA_VERSION:
            conn.close()
            if version > SCHEMA_VERSION:
                raise RunStoreError(
                    f"{path} was written by a newer kernelloop (run schema {version}; this "
                    f"version reads up to {SCHEMA_VERSION}): upgrade kernelloop to read it"
                )
            raise RunStoreError(f"{db} has no valid schema_version; it is not a kernelloop run")
        return cls(path.resolve(), conn)

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._conn.close()
                self._closed = True

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RunStore({str(self.path)!r})"

    # --- run level -------------------------------------------------------------------------------
    def meta(self) -> dict[str, str]:
        return {r["key"]: r["value"] for r in self._rows("SELECT key, value FROM meta")}

    def config(self) -> dict:
        return json.loads(self.meta()["config"])

    def status(self) -> str:
        return self.meta()["status"]

    def set_status(self, status: str) -> None:
        """``running`` again on resume; any other status stamps ``finished_at``."""
        sql.check(status, RUN_STATUSES, "run status")
        with self._tx() as db:
            db.execute(sql.SET_META, ("status", status, status))
            if status == "running":
                db.execute("DELETE FROM meta WHERE key = 'finished_at'")
            else:
                now = _now()
                db.execute(sql.SET_META, ("finished_at", now, now))

    # --- problems --------------------------------------------------------------------------------
    def start_problem(self, problem_id: str) -> None:
        """Mark a problem running; on resume its start time and rounds are kept."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO problems (problem_id, status, started_at) VALUES (?, 'running', ?)"
                " ON CONFLICT (problem_id) DO UPDATE"
                " SET status = 'running', finished_at = NULL, stop_reason = NULL",
                (problem_id, _now()),
            )

    def set_rounds_done(self, problem_id: str, rounds_done: int) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE problems SET rounds_done = MAX(rounds_done, ?) WHERE problem_id = ?",
                (rounds_done, problem_id),
            )

    def finish_problem(self, problem_id: str, status: str, stop_reason: str) -> None:
        """``status``: solved | unsolved | finished | failed | interrupted."""
        sql.check(status, PROBLEM_STATUSES, "problem status")
        with self._tx() as db:
            cur = db.execute(
                "UPDATE problems SET status = ?, finished_at = ?, stop_reason = ?"
                " WHERE problem_id = ?",
                (status, _now(), stop_reason, problem_id),
            )
            if cur.rowcount == 0:
                raise ValueError(f"problem {problem_id!r} was never started in run {self.run_id}")
            db.execute(sql.REFRESH_BEST, (problem_id, problem_id))

    def problems(self) -> list[dict]:
        return self._rows("SELECT * FROM problems ORDER BY started_at, rowid")

    # --- candidates ------------------------------------------------------------------------------
    def add_candidate(
        self,
        problem_id: str,
        round: int,
        idx: int,
        source: str,
        *,
        parent_id: str | None,
        mode: str,
    ) -> str:
        """Store a candidate's source; the same (problem, round, idx) again returns the same id.

        Re-adding with different source raises: the stored verdict would no longer describe the
        stored code. A resumed campaign gets identical source by re-using the stored Coder reply.
        """
        sql.check(mode, CANDIDATE_MODES, "candidate mode")
        candidate_id = f"{slug(problem_id)}-r{round}-c{idx}"
        sha = hashlib.sha256(source.encode()).hexdigest()
        source_path = f"{CANDIDATES_DIR}/{candidate_id}/source.py"
        with self._lock:
            existing = self._row(
                "SELECT problem_id, source_sha256 FROM candidates WHERE candidate_id = ?",
                (candidate_id,),
            )
            if existing is not None:
                if existing["problem_id"] != problem_id:
                    raise ValueError(
                        f"candidate id {candidate_id} already belongs to problem "
                        f"{existing['problem_id']!r}; problem ids that differ only in "
                        f"punctuation or case ({problem_id!r}) cannot share a run"
                    )
                if existing["source_sha256"] != sha:
                    raise ValueError(
                        f"candidate {candidate_id} was stored with different source; reuse the "
                        "stored Coder reply (find_llm_call) when resuming"
                    )
                return candidate_id
            self._write(source_path, source)
            with self._tx() as db:
                db.execute(
                    "INSERT OR IGNORE INTO problems (problem_id, status, started_at)"
                    " VALUES (?, 'running', ?)",
                    (problem_id, _now()),
                )
                sql.insert(
                    db,
                    "candidates",
                    {
                        "candidate_id": candidate_id,
                        "problem_id": problem_id,
                        "round": round,
                        "idx": idx,
                        "parent_id": parent_id,
                        "mode": mode,
                        "source_sha256": sha,
                        "source_path": source_path,
                        "created_at": _now(),
                    },
                )
        return candidate_id

    def record_verdict(self, candidate_id: str, verdict: Verdict) -> None:
        """Write ``verdict.json`` and ``build.log`` and fill the candidate's evaluation columns."""
        row = self.candidate(candidate_id)
        if row is None:
            raise KeyError(f"no candidate {candidate_id!r} in run {self.run_id}; add it first")
        if verdict.problem_id != row["problem_id"]:
            raise ValueError(
                f"verdict is for problem {verdict.problem_id!r} but candidate {candidate_id} "
                f"belongs to {row['problem_id']!r}"
            )
        folder = f"{CANDIDATES_DIR}/{candidate_id}"
        t = verdict.timing
        columns = {
            "accepted": int(verdict.accepted),
            "codes": json.dumps(verdict.codes),
            "backend": verdict.backend,
            "device": verdict.device,
            "median_ms": t.candidate.median if t else None,
            **sql.interval_columns("speedup_eager", t.speedup_eager if t else None),
            **sql.interval_columns("speedup_compile", t.speedup_compile if t else None),
            "verdict_path": f"{folder}/verdict.json",
            "evaluated_at": _now(),
        }
        with self._lock:
            self._write(columns["verdict_path"], verdict.to_json(indent=1))
            self._write(f"{folder}/build.log", verdict.build.log if verdict.build else "")
            with self._tx() as db:
                sql.update(db, "candidates", columns, candidate_id=candidate_id)
                db.execute(sql.REFRESH_BEST, (row["problem_id"], row["problem_id"]))

    def verdict_for(self, candidate_id: str) -> Verdict | None:
        """The stored verdict, or None when the candidate was not evaluated (or is unknown)."""
        row = self._row(
            "SELECT verdict_path FROM candidates WHERE candidate_id = ? AND accepted IS NOT NULL",
            (candidate_id,),
        )
        if row is None:
            return None
        return Verdict.from_json((self.path / row["verdict_path"]).read_text(encoding="utf-8"))

    def candidate(self, candidate_id: str) -> dict | None:
        """One candidate row: ``accepted`` is True/False/None (not evaluated), ``codes`` a list."""
        row = self._row("SELECT * FROM candidates WHERE candidate_id = ?", (candidate_id,))
        return sql.candidate_dict(row) if row else None

    def candidates(self, problem_id: str | None = None) -> list[dict]:
        rows = self._rows(
            "SELECT * FROM candidates WHERE ? IS NULL OR problem_id = ?"
            " ORDER BY problem_id, round, idx",
            (problem_id, problem_id),
        )
        return [sql.candidate_dict(r) for r in rows]

    def best_candidate(self, problem_id: str) -> dict | None:
        """The accepted candidate with the highest speedup vs eager (point estimate).

        Ties go to the lower median time. Timed candidates rank above untimed ones; among
        untimed accepted candidates (a CPU run) the earliest wins.
        """
        row = self._row(sql.BEST_CANDIDATE, (problem_id,))
        return sql.candidate_dict(row) if row else None

    # --- LLM calls -------------------------------------------------------------------------------
    def find_llm_call(self, idem_key: str) -> dict | None:
        """The latest call recorded under ``idem_key``, with ``text`` and ``result`` (the stored
        LLMResult dict) when a reply came back. Reuse it only when ``status == "ok"``."""
        row = self._row("SELECT * FROM llm_calls WHERE idem_key = ?", (idem_key,))
        if row is None:
            return None
        result = None
        if row["response_path"]:
            result = json.loads((self.path / row["response_path"]).read_text(encoding="utf-8"))
        return {**row, "result": result, "text": (result or {}).get("text")}

    def record_llm_call(
        self,
        idem_key: str,
        *,
        problem_id: str,
        round: int,
        role: str,
        model: str,
        messages: list[dict],
        result: dict | None,
        error: str | None = None,
    ) -> str:
        """Store one request and its reply (``result`` = ``LLMResult.to_dict()``) or its error.

        A key already recorded as ``ok`` returns that call's id and stores nothing. A key whose
        earlier attempt failed keeps that attempt (its spend counts) with the key cleared, and
        records this one under the key.
        """
        sql.check(role, LLM_ROLES, "LLM role")
        if result is None and error is None:
            raise ValueError("record_llm_call needs the result or the error")
        result = result or {}
        with self._lock:
            existing = self._row(
                "SELECT call_id, status FROM llm_calls WHERE idem_key = ?", (idem_key,)
            )
            if existing is not None and existing["status"] == "ok":
                return existing["call_id"]
            n = self._row(
                "SELECT COUNT(*) AS n FROM llm_calls WHERE problem_id = ? AND round = ?"
                " AND role = ?",
                (problem_id, round, role),
            )["n"]
            call_id = f"{slug(problem_id)}-r{round}-{role}-{n + 1}"
            while self._row("SELECT 1 FROM llm_calls WHERE call_id = ?", (call_id,)):
                n += 1  # only when two problem ids share a slug
                call_id = f"{slug(problem_id)}-r{round}-{role}-{n + 1}"
            request_path = f"{LLM_DIR}/{call_id}.request.json"
            response_path = f"{LLM_DIR}/{call_id}.response.json" if result else None
            request = {
                "call_id": call_id,
                "idem_key": idem_key,
                "problem_id": problem_id,
                "round": round,
                "role": role,
                "model": model,
                "messages": messages,
            }
            self._write(request_path, json.dumps(request, indent=1, default=str))
            if response_path:
                self._write(response_path, json.dumps(result, indent=1, default=str))
            with self._tx() as db:
                if existing is not None:
                    db.execute(
                        "UPDATE llm_calls SET idem_key = NULL WHERE call_id = ?",
                        (existing["call_id"],),
                    )
                sql.insert(
                    db,
                    "llm_calls",
                    {
                        "call_id": call_id,
                        "idem_key": idem_key,
                        "problem_id": problem_id,
                        "round": round,
                        "role": role,
                        "model": model,
                        "prompt_tokens": result.get("prompt_tokens"),
                        "completion_tokens": result.get("completion_tokens"),
                        "cost_usd": result.get("cost_usd"),  # None stays NULL: unknown, not free
                        "latency_s": result.get("latency_s"),
                        "attempts": result.get("attempts"),
                        "status": "error" if error else "ok",
                        "error": error,
                        "request_path": request_path,
                        "response_path": response_path,
                        "created_at": _now(),
                    },
                )
        return call_id

    def llm_calls(self, problem_id: str | None = None) -> list[dict]:
        """Call rows in the order they were made (no message or reply text; see the files)."""
        return self._rows(
            "SELECT * FROM llm_calls WHERE ? IS NULL OR problem_id = ? ORDER BY created_at, rowid",
            (problem_id, problem_id),
        )

    def spend(self, problem_id: str | None = None) -> dict:
        """Money and tokens so far; calls without a known price count in ``usd_unknown_calls``."""
        row = self._row(
            "SELECT COUNT(*) AS calls, COALESCE(SUM(cost_usd), 0.0) AS usd,"
            " COALESCE(SUM(cost_usd IS NULL), 0) AS usd_unknown_calls,"
            " COALESCE(SUM(prompt_tokens), 0) AS prompt_tokens,"
            " COALESCE(SUM(completion_tokens), 0) AS completion_tokens"
            " FROM llm_calls WHERE ? IS NULL OR problem_id = ?",
            (problem_id, problem_id),
        )
        return {
            "usd": float(row["usd"]),
            "usd_unknown_calls": row["usd_unknown_calls"],
            "prompt_tokens": row["prompt_tokens"],
            "completion_tokens": row["completion_tokens"],
            "calls": row["calls"],
        }

    # --- advice and events -----------------------------------------------------------------------
    def add_advice(
        self,
        problem_id: str,
        round: int,
        mode: str,
        advice: dict,
        *,
        candidate_id: str | None,
        llm_call_id: str | None,
    ) -> None:
        """The Judge's advice for a round; the same (problem, round, mode, candidate) replaces."""
        sql.check(mode, ADVICE_MODES, "advice mode")
        key = (problem_id, round, mode, candidate_id)
        with self._tx() as db:
            db.execute(
                "DELETE FROM advice WHERE problem_id = ? AND round = ? AND mode = ?"
                " AND candidate_id IS ?",
                key,
            )
            db.execute(
                "INSERT INTO advice (problem_id, round, mode, candidate_id, advice, llm_call_id,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (*key, json.dumps(advice, default=str), llm_call_id, _now()),
            )

    def advice(self, problem_id: str) -> list[dict]:
        rows = self._rows(
            "SELECT * FROM advice WHERE problem_id = ? ORDER BY round, id", (problem_id,)
        )
        return [{**r, "advice": json.loads(r["advice"])} for r in rows]

    def event(self, kind: str, problem_id: str | None = None, **payload: Any) -> None:
        """A progress or log line, e.g. ``store.event("evaluated", pid, candidate=cid)``."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO events (ts, problem_id, kind, payload) VALUES (?, ?, ?, ?)",
                (_now(), problem_id, kind, json.dumps(payload, default=str)),
            )

    def events(self, problem_id: str | None = None, after_id: int = 0) -> list[dict]:
        """Events in order; pass the last seen ``id`` as ``after_id`` to follow a live run."""
        rows = self._rows(
            "SELECT * FROM events WHERE id > ? AND (? IS NULL OR problem_id = ?) ORDER BY id",
            (after_id, problem_id, problem_id),
        )
        return [{**r, "payload": json.loads(r["payload"])} for r in rows]

    # --- reading a whole run ---------------------------------------------------------------------
    def summary(self) -> dict:
        """The run and each problem in numbers (:func:`.report.summarize`)."""
        return summarize(self)

    def last_activity(self, problem_id: str | None = None) -> str | None:
        """The newest timestamp written for a problem (or the run): how long it has been going."""
        return self._row(sql.LAST_ACTIVITY, (problem_id,) * 6)["ts"]

    # --- internals -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; IMMEDIATE takes the write lock up front (no upgrade deadlock
        with a reader in another process)."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _rows(self, sql: str, params: tuple = ()) -> list[dict]:
        with self._lock:
            return [dict(r) for r in self._conn.execute(sql, params).fetchall()]

    def _row(self, sql: str, params: tuple = ()) -> dict | None:
        rows = self._rows(sql, params)
        return rows[0] if rows else None

    def _write(self, relative: str, text: str) -> None:
        target = self.path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
