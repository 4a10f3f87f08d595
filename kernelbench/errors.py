"""The problem layer's one error, in a module of its own so that everything in the layer can
raise it without importing ``problem.py`` (which reaches ``autosize.py`` for derived sizes)."""

from __future__ import annotations

from ..errors import KernelloopError


class ProblemError(KernelloopError, ValueError):
    """The problem file is malformed or an override does not fit it."""
