"""What every backend returns."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable


@dataclasses.dataclass
class Launched:
    """A worker that is not our child (a container): the local command that attaches to it."""

    argv: list[str]  # runs as long as the worker does, relays its stdout/stderr and exit status
    env: dict[str, str]  # that local command's environment (the worker's own was set at creation)


@dataclasses.dataclass
class Ended:
    """What a container backend learnt while removing its worker."""

    killed: int = 0  # worker processes still alive at removal
    oom_killed: bool = False  # the memory cgroup killed it
    peak_memory_bytes: int = 0  # the container's peak memory, where the daemon reports it
    signal: str | None = None  # the signal that ended the worker, from its exit status


@dataclasses.dataclass
class Wrapped:
    argv: list[str]
    isolation: list[str]  # what this wrapping achieves, for the verdict ("netns", "ro-root", ...)
    workdir: str | None = None  # the work dir's path as the worker sees it, if it differs
    # Ask the worker to move itself into a new network namespace first thing. It is done in the
    # worker, never in a preexec_fn: forking a process that has CUDA (or any) threads and then
    # running Python before exec can deadlock the child on a lock held by another thread.
    isolate_network: bool = False
    # Container backends: the worker lives outside our process tree. ``launch(env, memory_cap,
    # max_tasks)`` creates it with the scrubbed environment and its own memory and task limits
    # and says how to attach to it; ``finish()`` removes it (whatever happened) and reports.
    # Such a worker cannot inherit a pipe, so its verdict channel is a FIFO in the work dir.
    launch: Callable[[dict[str, str], int, int | None], Launched] | None = None
    finish: Callable[[], Ended] | None = None

    @property
    def fifo_channel(self) -> bool:
        return self.launch is not None
