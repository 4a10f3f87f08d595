"""Isolation backends: how a worker command is wrapped before it is spawned.

One file per backend. Each exposes ``NAME``, ``available() -> str | None`` (``None`` when usable,
else why not) and ``wrap(argv, workdir, gpu) -> Wrapped``. :func:`select` resolves ``auto``.
"""

from __future__ import annotations

from . import bwrap, docker, process
from .base import Wrapped

BACKENDS = {process.NAME: process, bwrap.NAME: bwrap, docker.NAME: docker}


def select(name: str = "auto"):
    """The backend module for ``name``; ``auto`` prefers bwrap where it works (never docker:
    a container per candidate is chosen explicitly, with ``--sandbox docker``)."""
    if name == "auto":
        return bwrap if bwrap.available() is None else process
    if name not in BACKENDS:
        raise ValueError(f"unknown sandbox {name!r}; choose auto, {', '.join(BACKENDS)}")
    module = BACKENDS[name]
    why_not = module.available()
    if why_not:
        raise RuntimeError(f"sandbox {name!r} is not usable here: {why_not}")
    return module


__all__ = ["BACKENDS", "Wrapped", "select"]
