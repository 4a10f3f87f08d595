"""What the models were asked and answered in a run: each LLM call, its spend, the Judge's advice.

:class:`CallRecords` is mixed into :class:`~kernelloop.runs.store.RunStore`; callers use these
methods through a store. A call's request and reply go to ``llm/`` files before the row that
names them; ``--resume`` asks :meth:`~CallRecords.find_llm_call` before paying for a completion
again.
"""

from __future__ import annotations

import json

from . import sql
from .folder import RunFolder, slug, timestamp
from .rows import AdviceRow, LlmCallRow, StoredCall, from_db
from .schema import ADVICE_MODES, LLM_DIR, LLM_ROLES

__all__ = ["CallRecords"]


class CallRecords(RunFolder):
    """The ``llm_calls`` and ``advice`` tables of one run."""

    # --- LLM calls -------------------------------------------------------------------------------
    def find_llm_call(self, idem_key: str) -> StoredCall | None:
        """The latest call recorded under ``idem_key``, with its reply when one came back.
        Reuse it only when it is ``ok``."""
        row = self._row("SELECT * FROM llm_calls WHERE idem_key = ?", (idem_key,))
        if row is None:
            return None
        call = from_db(LlmCallRow, row)
        result = None
        if call.response_path:
            result = json.loads((self.path / call.response_path).read_text(encoding="utf-8"))
        return StoredCall(call, result, (result or {}).get("text"))

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
            ids = {
                "call_id": call_id,
                "idem_key": idem_key,
                "problem_id": problem_id,
                "round": round,
                "role": role,
                "model": model,
            }
            request = {**ids, "messages": messages}
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
                        **ids,
                        "prompt_tokens": result.get("prompt_tokens"),
                        "completion_tokens": result.get("completion_tokens"),
                        "cost_usd": result.get("cost_usd"),  # None stays NULL: unknown, not free
                        "latency_s": result.get("latency_s"),
                        "attempts": result.get("attempts"),
                        "status": "error" if error else "ok",
                        "error": error,
                        "request_path": request_path,
                        "response_path": response_path,
                        "created_at": timestamp(),
                    },
                )
        return call_id

    def llm_calls(self, problem_id: str | None = None) -> list[LlmCallRow]:
        """Call rows in the order they were made (no message or reply text; see the files)."""
        rows = self._rows(
            "SELECT * FROM llm_calls WHERE ? IS NULL OR problem_id = ? ORDER BY created_at, rowid",
            (problem_id, problem_id),
        )
        return [from_db(LlmCallRow, r) for r in rows]

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

    # --- the Judge's advice ----------------------------------------------------------------------
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
                (*key, json.dumps(advice, default=str), llm_call_id, timestamp()),
            )

    def advice(self, problem_id: str) -> list[AdviceRow]:
        rows = self._rows(
            "SELECT * FROM advice WHERE problem_id = ? ORDER BY round, id", (problem_id,)
        )
        return [from_db(AdviceRow, r) for r in rows]
