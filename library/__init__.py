"""The verified-kernel library: entries, promotion, dispatch, re-validation.

``from kernelloop.library import dispatch`` is what the efficiency modules call;
``load(problem)`` serves any problem's entries (a patched model's subgraphs). Submodules are
imported on first use, so importing the package is cheap.
"""

from __future__ import annotations

from typing import Any


def dispatch(op: str, *tensors: Any, **config: Any):
    from .dispatcher import dispatch as _dispatch

    return _dispatch(op, *tensors, **config)


def load(
    problem_or_key: Any, *, allow_untimed: bool = False, library: Any = None, size: Any = None
):
    """A module that runs the best verified entry for each call's shapes, else the problem's
    reference (``loaded.py``); ``problem_or_key`` is a problem file, ``Problem``, bundled id or
    graph op key."""
    from .loaded import load as _load

    return _load(problem_or_key, allow_untimed=allow_untimed, library=library, size=size)


def explain(op: str, *tensors: Any, **config: Any) -> str:
    from .dispatcher import explain as _explain

    return _explain(op, *tensors, **config)
