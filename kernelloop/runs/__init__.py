"""The run store: everything a campaign writes under ``<runs_dir>/<run-id>/``.

- :mod:`.store`: :class:`RunStore` (write and read one run) and :func:`list_runs`; its parts
  :mod:`.folder` (connection, transactions, artifact files) and :mod:`.calls` (LLM calls, advice).
- :mod:`.schema`: the folder layout and the SQLite schema, column by column, and its migrations.
- :mod:`.rows`: what the read methods return: one frozen dataclass per table.
- :mod:`.report`: a run's summary and scores (correct %, fast_1, geomean speedups), the run list.
- :mod:`.cli`: ``kernelloop runs list`` and ``kernelloop runs show``.

Names are imported on first use, so registering the CLI sub-app stays cheap.
"""

from __future__ import annotations

from typing import Any

__all__ = ["RunNotFound", "RunStore", "RunStoreError", "list_runs"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import store

        return getattr(store, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
