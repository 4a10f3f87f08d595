"""The run store's SQL layer: connections, the queries shared by several methods, writes.

Table and column names come from this module and ``schema.py``, never from callers; values are
always bound parameters.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from ..sandbox.stats import Interval
from .schema import PRAGMAS

# Queries used from more than one method.
BEST_CANDIDATE = """
    SELECT * FROM candidates WHERE problem_id = ? AND accepted = 1
    ORDER BY speedup_eager IS NULL, speedup_eager DESC, median_ms IS NULL, median_ms,
             created_at, rowid
    LIMIT 1
"""
REFRESH_BEST = f"""
    UPDATE problems SET best_candidate_id = (SELECT candidate_id FROM ({BEST_CANDIDATE}))
    WHERE problem_id = ?
"""
SET_META = "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = ?"
LAST_ACTIVITY = """
    SELECT MAX(ts) AS ts FROM (
        SELECT MAX(COALESCE(evaluated_at, created_at)) AS ts FROM candidates
            WHERE ? IS NULL OR problem_id = ?
        UNION ALL SELECT MAX(created_at) FROM llm_calls WHERE ? IS NULL OR problem_id = ?
        UNION ALL SELECT MAX(ts) FROM events WHERE ? IS NULL OR problem_id = ?
    )
"""


def connect(db: Path) -> sqlite3.Connection:
    # isolation_level=None: we issue BEGIN/COMMIT ourselves (see RunStore._tx).
    conn = sqlite3.connect(db, check_same_thread=False, isolation_level=None, timeout=30)
    conn.row_factory = sqlite3.Row
    try:
        for pragma in PRAGMAS:
            conn.execute(pragma)
    except sqlite3.DatabaseError:
        conn.close()
        raise
    return conn


def check(value: str, allowed: tuple[str, ...], what: str) -> None:
    if value not in allowed:
        raise ValueError(f"{what} must be one of {', '.join(allowed)}; got {value!r}")


def interval_columns(name: str, iv: Interval | None) -> dict[str, float | None]:
    return {
        name: iv.point if iv else None,
        f"{name}_low": iv.low if iv else None,
        f"{name}_high": iv.high if iv else None,
    }


# Table and column names below come from this module, never from callers; values are always
# bound parameters.
def insert(db: sqlite3.Connection, table: str, row: dict[str, Any]) -> None:
    marks = ", ".join("?" * len(row))
    db.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({marks})", tuple(row.values()))


def update(db: sqlite3.Connection, table: str, row: dict[str, Any], **key: Any) -> None:
    ((key_column, key_value),) = key.items()
    assignments = ", ".join(f"{column} = ?" for column in row)
    db.execute(
        f"UPDATE {table} SET {assignments} WHERE {key_column} = ?", (*row.values(), key_value)
    )
