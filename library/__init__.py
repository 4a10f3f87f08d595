"""The verified-kernel library: entries, promotion, dispatch, re-validation.

``from kernelloop.library import dispatch`` is what the efficiency modules call. Submodules are
imported on first use, so importing the package is cheap.
"""

from __future__ import annotations

from typing import Any


def dispatch(op: str, *tensors: Any, **config: Any):
    from .dispatcher import dispatch as _dispatch

    return _dispatch(op, *tensors, **config)


def explain(op: str, *tensors: Any, **config: Any) -> str:
    from .dispatcher import explain as _explain

    return _explain(op, *tensors, **config)
