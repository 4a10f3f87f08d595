"""A candidate worker started for the *next* evaluation while this one ends.

On a CPU an evaluation's critical path is the candidate worker's start-up: spawning it inside the
sandbox and importing torch and Triton took about 2 of its 2.4 seconds, and the reference (now
tens of milliseconds) no longer hides it. A campaign evaluates candidate after candidate, so each
evaluation leaves one waiting worker behind for the next to take. A spare runs nothing of any
candidate's until a job is posted to it, exactly like the worker an evaluation starts for itself
(``evaluate._run``); it lives in its own fresh folder, and it ends by itself if nobody takes it.
"""

from __future__ import annotations

import atexit
import dataclasses
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from . import launch

IDLE_S = 300.0  # a spare older than this is not used: its await window is running out

_lock = threading.Lock()
_spares: dict[tuple, Spare] = {}
_registered = [False]


@dataclasses.dataclass
class Spare:
    base: Path  # the evaluation folder: work/ is the worker's, private/ the reference's
    worker: launch.WorkerRun
    started: float

    def discard(self) -> None:
        self.worker.cancel()
        shutil.rmtree(self.base, ignore_errors=True)


def make_base() -> Path:
    """A fresh evaluation folder with the worker's subfolders."""
    base = Path(tempfile.mkdtemp(prefix="kernelloop-eval-"))
    for d in ("inputs", "params", "out", "tmp"):
        (base / "work" / d).mkdir(parents=True, mode=0o700)
    return base


def take(key: tuple) -> Spare | None:
    """The spare left for evaluations like this one (same sandbox, device and limits)."""
    with _lock:
        spare = _spares.pop(key, None)
    if spare is not None and time.monotonic() - spare.started > IDLE_S:
        spare.discard()
        return None
    return spare


def leave(key: tuple, start: Callable[[Path], launch.WorkerRun]) -> None:
    """Start a worker in a fresh folder for the next evaluation like this one; ``start(work)``
    starts it (awaiting its job). At most one spare per kind: a second is not started."""
    with _lock:
        if key in _spares:
            return
        if not _registered[0]:
            atexit.register(discard_all)
            _registered[0] = True
    base = make_base()
    try:
        spare = Spare(base, start(base / "work"), time.monotonic())
    except BaseException:
        shutil.rmtree(base, ignore_errors=True)
        raise
    with _lock:
        old, _spares[key] = _spares.get(key), spare
    if old is not None:  # another thread left one meanwhile: keep the newer
        old.discard()


def discard_all() -> None:
    with _lock:
        spares = list(_spares.values())
        _spares.clear()
    for spare in spares:
        spare.discard()
