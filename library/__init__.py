"""The verified-kernel library: entries, promotion, dispatch, re-validation.

``from kernelloop.library import dispatch`` is what the efficiency modules call;
``load(problem)`` serves any problem's entries (a patched model's subgraphs). Submodules are
imported on first use, so importing the package is cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what __getattr__ below hands out, for type checkers and readers
    from .dispatcher import dispatch as dispatch
    from .dispatcher import explain as explain


def load(
    problem_or_key: Any, *, allow_untimed: bool = False, library: Any = None, size: Any = None
):
    """A module that runs the best verified entry for each call's shapes, else the problem's
    reference (``loaded.py``); ``problem_or_key`` is a problem file, ``Problem``, bundled id or
    graph op key."""
    from .loaded import load as _load

    return _load(problem_or_key, allow_untimed=allow_untimed, library=library, size=size)


def __getattr__(name: str) -> Any:
    # ``dispatch`` and ``explain`` are the dispatcher's own functions, imported (with torch) on
    # first use: a wrapper that imported them per call cost about 1.5 us of every module call,
    # a third of the dispatch budget (benchmarks/dispatch.py).
    if name in ("dispatch", "explain"):
        from . import dispatcher

        globals()[name] = value = getattr(dispatcher, name)
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
