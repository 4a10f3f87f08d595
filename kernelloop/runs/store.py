"""The run store: everything a campaign writes, in one SQLite file plus artifact files.

A campaign makes a run with :meth:`RunStore.create`, then per problem calls
:meth:`~RunStore.start_problem`, :meth:`~RunStore.add_candidate` and
:meth:`~RunStore.record_verdict` for each kernel, :meth:`~RunStore.record_llm_call` for each
model request, :meth:`~RunStore.add_advice` for the Judge's answer, :meth:`~RunStore.event` for
progress lines, and :meth:`~RunStore.finish_problem`. ``--resume`` reopens the run with
:meth:`RunStore.open` and asks :meth:`~RunStore.verdict_for` and :meth:`~RunStore.find_llm_call`
before repeating work, so a crash never costs a second evaluation or a second paid completion.
The CLI and the dashboard read through :meth:`~RunStore.summary`, the listing methods and
:func:`list_runs`; no module outside the store holds SQL for this database. Read methods return
the frozen rows of :mod:`.rows`. The layout of a run folder and every column are documented in
:mod:`kernelloop.runs.schema`.

One ``RunStore`` holds one SQLite connection guarded by a lock, so the campaign's worker threads
may share it. Artifact files are written before the row that points at them, so a row never names
a missing file; files are replaced atomically, so a reader never sees half of one.

The class is split by role so each part stays readable: :mod:`.folder` holds the connection,
transactions and artifact writes, :mod:`.calls` the LLM calls, spend and the Judge's advice, and
this module opening a run, its problems, candidates, verdicts and events.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import KernelloopError
from ..sandbox.verdict import Verdict
from . import sql
from .calls import CallRecords
from .folder import RunFolder, slug, timestamp
from .report import active_seconds, summarize
from .rows import CandidateRow, EventRow, ProblemRow, from_db
from .schema import (
    CANDIDATE_MODES,
    CANDIDATES_DIR,
    DATABASE,
    DDL,
    MIGRATIONS,
    PROBLEM_STATUSES,
    RUN_STATUSES,
    SCHEMA_VERSION,
)

__all__ = ["RunNotFound", "RunStore", "RunStoreError", "list_runs", "new_run_id", "slug"]


class RunStoreError(KernelloopError):
    """A run folder that cannot be created or read; the message says what to do about it."""


class RunNotFound(RunStoreError):
    """No run database at the given path."""


_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def new_run_id(now: datetime | None = None) -> str:
    """UTC timestamp plus a short random suffix (two runs started in one second differ)."""
    return f"{(now or datetime.now(UTC)):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


class RunStore(CallRecords, RunFolder):
    """One campaign run: ``<runs_dir>/<run_id>/run.sqlite`` plus its artifact files."""

    SCHEMA_VERSION = SCHEMA_VERSION

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
                ("created_at", timestamp()),
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
        """``running`` again on resume; any other status stamps ``finished_at``.

        Each sitting (from ``running`` to the next status) adds its length to ``active_s``, so
        a campaign resumed days later reports the minutes it ran, not the calendar between."""
        sql.check(status, RUN_STATUSES, "run status")
        with self._tx() as db:
            db.execute(sql.SET_META, ("status", status, status))
            now = timestamp()
            meta = {r[0]: r[1] for r in db.execute("SELECT key, value FROM meta")}
            if status == "running":
                if "active_s" not in meta and meta.get("finished_at"):
                    # a run from before sittings were counted: its one sitting, start to end
                    done = str(active_seconds({"sitting_started_at": meta["created_at"]},
                                              meta["finished_at"]))  # fmt: skip
                    db.execute(sql.SET_META, ("active_s", done, done))
                db.execute("DELETE FROM meta WHERE key = 'finished_at'")
                db.execute(sql.SET_META, ("sitting_started_at", now, now))
                return
            db.execute(sql.SET_META, ("finished_at", now, now))
            if "sitting_started_at" in meta:
                active = active_seconds(meta, now)
                db.execute(sql.SET_META, ("active_s", str(active), str(active)))
                db.execute("DELETE FROM meta WHERE key = 'sitting_started_at'")

    # --- problems --------------------------------------------------------------------------------
    def start_problem(self, problem_id: str) -> None:
        """Mark a problem running; on resume its start time and rounds are kept, unless an
        earlier sitting's budget stopped it before its first round (its clock starts now)."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO problems (problem_id, status, started_at) VALUES (?, 'running', ?)"
                " ON CONFLICT (problem_id) DO UPDATE"
                " SET status = 'running', finished_at = NULL, stop_reason = NULL,"
                " started_at = CASE WHEN problems.status = 'interrupted'"
                " AND problems.rounds_done = 0 THEN excluded.started_at"
                " ELSE problems.started_at END",
                (problem_id, timestamp()),
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
                (status, timestamp(), stop_reason, problem_id),
            )
            if cur.rowcount == 0:
                raise ValueError(f"problem {problem_id!r} was never started in run {self.run_id}")
            db.execute(sql.REFRESH_BEST, (problem_id, problem_id))

    def problems(self) -> list[ProblemRow]:
        rows = self._rows("SELECT * FROM problems ORDER BY started_at, rowid")
        return [from_db(ProblemRow, r) for r in rows]

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
        builtin_config: dict[str, Any] | None = None,
    ) -> str:
        """Store a candidate's source; the same (problem, round, idx) again returns the same id.

        Re-adding with different source raises: the stored verdict would no longer describe the
        stored code. A resumed campaign gets identical source by re-using the stored Coder reply.
        ``builtin_config`` is the builtin coder's record of what it emitted (its judge reads it
        back from the row); other Coders leave it None.
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
                self._upgrade(db)  # a resumed older run gains the columns this insert names
                db.execute(
                    "INSERT OR IGNORE INTO problems (problem_id, status, started_at)"
                    " VALUES (?, 'running', ?)",
                    (problem_id, timestamp()),
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
                        "created_at": timestamp(),
                        "builtin_config": None
                        if builtin_config is None
                        else json.dumps(builtin_config, sort_keys=True),
                    },
                )
        return candidate_id

    def _upgrade(self, db: sqlite3.Connection) -> None:
        """Bring a run written by an older kernelloop up to this schema, inside the caller's
        write transaction: the new columns appear, the old rows hold NULL in them."""
        row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        for version in range(int(row["value"]) + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS.get(version, ()):
                db.execute(statement)
            db.execute(sql.SET_META, ("schema_version", str(version), str(version)))

    def record_verdict(self, candidate_id: str, verdict: Verdict) -> None:
        """Write ``verdict.json`` and ``build.log`` and fill the candidate's evaluation columns."""
        row = self.candidate(candidate_id)
        if row is None:
            raise KeyError(f"no candidate {candidate_id!r} in run {self.run_id}; add it first")
        if verdict.problem_id != row.problem_id:
            raise ValueError(
                f"verdict is for problem {verdict.problem_id!r} but candidate {candidate_id} "
                f"belongs to {row.problem_id!r}"
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
            "evaluated_at": timestamp(),
        }
        with self._lock:
            self._write(columns["verdict_path"], verdict.to_json(indent=1))
            self._write(f"{folder}/build.log", verdict.build.log if verdict.build else "")
            with self._tx() as db:
                sql.update(db, "candidates", columns, candidate_id=candidate_id)
                db.execute(sql.REFRESH_BEST, (row.problem_id, row.problem_id))

    def verdict_for(self, candidate_id: str) -> Verdict | None:
        """The stored verdict, or None when the candidate was not evaluated (or is unknown)."""
        row = self._row(
            "SELECT verdict_path FROM candidates WHERE candidate_id = ? AND accepted IS NOT NULL",
            (candidate_id,),
        )
        if row is None:
            return None
        return Verdict.from_json((self.path / row["verdict_path"]).read_text(encoding="utf-8"))

    def candidate(self, candidate_id: str) -> CandidateRow | None:
        """One candidate row: ``accepted`` is True/False/None (not evaluated), ``codes`` a list."""
        row = self._row("SELECT * FROM candidates WHERE candidate_id = ?", (candidate_id,))
        return from_db(CandidateRow, row) if row else None

    def candidates(self, problem_id: str | None = None) -> list[CandidateRow]:
        rows = self._rows(
            "SELECT * FROM candidates WHERE ? IS NULL OR problem_id = ?"
            " ORDER BY problem_id, round, idx",
            (problem_id, problem_id),
        )
        return [from_db(CandidateRow, r) for r in rows]

    def best_candidate(self, problem_id: str) -> CandidateRow | None:
        """The accepted candidate with the highest speedup vs eager (point estimate).

        Ties go to the lower median time. Timed candidates rank above untimed ones; among
        untimed accepted candidates (a CPU run) the earliest wins.
        """
        row = self._row(sql.BEST_CANDIDATE, (problem_id,))
        return from_db(CandidateRow, row) if row else None

    # --- events ----------------------------------------------------------------------------------
    def event(self, kind: str, problem_id: str | None = None, **payload: Any) -> None:
        """A progress or log line, e.g. ``store.event("evaluated", pid, candidate=cid)``."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO events (ts, problem_id, kind, payload) VALUES (?, ?, ?, ?)",
                (timestamp(), problem_id, kind, json.dumps(payload, default=str)),
            )

    def events(self, problem_id: str | None = None, after_id: int = 0) -> list[EventRow]:
        """Events in order; pass the last seen ``id`` as ``after_id`` to follow a live run."""
        rows = self._rows(
            "SELECT * FROM events WHERE id > ? AND (? IS NULL OR problem_id = ?) ORDER BY id",
            (after_id, problem_id, problem_id),
        )
        return [from_db(EventRow, r) for r in rows]

    # --- reading a whole run ---------------------------------------------------------------------
    def summary(self) -> dict:
        """The run and each problem in numbers (:func:`.report.summarize`)."""
        return summarize(self)

    def last_activity(self, problem_id: str | None = None) -> str | None:
        """The newest timestamp written for a problem (or the run): how long it has been going."""
        return self._row(sql.LAST_ACTIVITY, (problem_id,) * 6)["ts"]


def list_runs(runs_dir: Path) -> list[dict]:
    """One row per run folder under ``runs_dir`` (a folder holding ``run.sqlite``), newest first.

    Other folders are skipped. A run whose database cannot be read is listed, not hidden, with
    ``status: "unreadable"`` and ``error``.
    """
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    out = []
    for path in runs_dir.iterdir():
        if not (path / DATABASE).is_file():
            continue
        try:
            with RunStore.open(path) as store:
                s = summarize(store)
        except (RunStoreError, sqlite3.Error, OSError, ValueError, KeyError) as exc:
            out.append({"run_id": path.name, "path": str(path), "created_at": None,
                        "status": "unreadable", "error": str(exc)})  # fmt: skip
            continue
        eager = [p["best"]["speedup_eager"] for p in s["problems"] if p["best"]]
        out.append(
            {
                "run_id": s["run_id"],
                "path": s["path"],
                "created_at": s["created_at"],
                "finished_at": s["finished_at"],
                "status": s["status"],
                "n_problems": s["n_problems"],
                "problems": [p["problem_id"] for p in s["problems"]],
                "models": s["models"],
                "usd": s["spend"]["usd"],
                "usd_unknown_calls": s["spend"]["usd_unknown_calls"],
                "calls": s["spend"]["calls"],
                "candidates": s["candidates"],
                "correct_pct": s["correct_pct"],
                "fast_1": s["fast_1"],
                "geomean_speedup_eager": s["geomean_speedup_eager"],
                "geomean_speedup_compile": s["geomean_speedup_compile"],
                "timed_problems": s["timed_problems"],
                "max_speedup_eager": max((iv["point"] for iv in eager if iv), default=None),
            }
        )
    out.sort(key=lambda r: (r["created_at"] or "", r["run_id"]), reverse=True)
    return out
