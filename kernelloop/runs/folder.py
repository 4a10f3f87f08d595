"""One run folder on disk: its SQLite connection, its transactions and its artifact files.

:class:`RunFolder` is the base of :class:`~kernelloop.runs.store.RunStore` and of the record
mixins (:mod:`.calls`); it knows no table. The connection is guarded by a lock, so the
campaign's worker threads may share one store. Artifact files are replaced atomically, so a
reader never sees half of one.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Self

__all__ = ["RunFolder", "slug", "timestamp"]


def slug(problem_id: str) -> str:
    """A file-name-safe form of a problem id: ``level1/01_relu`` -> ``level1-01-relu``."""
    return re.sub(r"[^a-z0-9]+", "-", problem_id.lower()).strip("-") or "problem"


def timestamp() -> str:
    """Now, as every row stores it: ISO 8601 in UTC with milliseconds (sorts as text)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class RunFolder:
    """``<runs_dir>/<run_id>/`` and the open connection to its ``run.sqlite``."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        """Use :meth:`RunStore.create` or :meth:`RunStore.open`."""
        self.path = path
        self.run_id = path.name
        self._conn = conn
        self._lock = threading.RLock()
        self._closed = False

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._conn.close()
                self._closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
