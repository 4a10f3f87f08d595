"""The errors ``kernelloop capture`` raises on purpose, each saying what to do next."""

from __future__ import annotations

from ..errors import KernelloopError


class CaptureError(KernelloopError, RuntimeError):
    """The model cannot be captured: it does not run, or ``torch.export`` cannot trace a call."""


class TargetError(CaptureError, ValueError):
    """``FILE:FACTORY`` or ``--inputs FILE:FN`` names nothing usable (a bad argument)."""
