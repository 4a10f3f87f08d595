"""What every backend returns."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class Wrapped:
    argv: list[str]
    isolation: list[str]  # what this wrapping achieves, for the verdict ("netns", "ro-root", ...)
    workdir: str | None = None  # the work dir's path as the worker sees it, if it differs
    # Ask the worker to move itself into a new network namespace first thing. It is done in the
    # worker, never in a preexec_fn: forking a process that has CUDA (or any) threads and then
    # running Python before exec can deadlock the child on a lock held by another thread.
    isolate_network: bool = False
