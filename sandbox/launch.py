"""Starting a worker, handing it its job, and collecting the frames it sent.

Two ways to run one:

- :func:`run_worker`: the job is written, the worker spawned and watched to its end (reference
  and baseline workers, the profiler). Its timeout counts from the spawn.
- :func:`start_worker` with ``await_s``: the worker is spawned *ahead of need* with only its boot
  settings (channel, limits, network isolation). It applies them, imports torch and Triton, and
  then waits for its job file, while the orchestrator computes the reference. :meth:`WorkerRun.post`
  writes the job and arms the timeout, so process start-up and ``import torch`` are off the
  critical path and not charged to the candidate.

Workers whose frames candidate code can write (the candidate's, the profiler's) are started with
their schema (``sandbox/frames.py``): the first frame that fails it stops the worker at once, and
the frames before it are all the orchestrator keeps (threat row 27). A candidate worker may also
get a cap on its work dir's growth (``disk_cap``, threat row 29).

Why an early worker gives candidate code no new window on the reference outputs (threat row 14):
the worker loads no candidate code until its job is posted, and the evaluator posts the job only
after the reference outputs have left the disk (``private`` wiped). Until then the process runs
only our own code.
"""

from __future__ import annotations

import contextvars
import json
import os
import queue
import sys
from collections.abc import Callable
from pathlib import Path

from . import channel, spawn
from .disk_watch import DiskCap
from .frames import Schema

# Set by an executor's per-GPU queue (sandbox/executors/local.py): the GPU this thread's
# evaluations may use. None: whatever CUDA_VISIBLE_DEVICES the orchestrator has.
assigned_gpu: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "assigned_gpu", default=None
)
# A worker waiting for its job gives up this long after the orchestrator would have killed it:
# the orchestrator's cap fires first, so a job is never posted to a worker that is leaving.
WORKER_GRACE_S = 30.0


def collect(reader: channel.Reader) -> tuple[list[tuple[float, dict]], str | None]:
    """All frames a finished worker sent, with arrival times, or why the stream was bad."""
    frames: list[tuple[float, dict]] = []
    while True:
        try:
            stamp, frame = reader.next(timeout=10)
        except queue.Empty:
            return frames, "the channel stayed open after the worker ended"
        if frame is None:
            return frames, None
        if isinstance(frame, channel.ChannelError):
            return frames, str(frame)
        frames.append((stamp, frame))


class WorkerRun:
    """A started worker: :meth:`post` its job (if it awaits one), then :meth:`wait`."""

    def __init__(self, running: spawn.Running, reader: channel.Reader, job_path: Path | None):
        self._running, self._reader, self._job_path = running, reader, job_path
        self._result = None
        # A forged or flooding frame ends the worker's say: nothing it sends later is read, so
        # it is stopped rather than left to run (or flood) until its timeout.
        reader.on_bad(running.cancel)

    @property
    def pid(self) -> int:
        return self._running.proc.pid

    def post(self, job: dict, disk_cap: int | None = None) -> bool:
        """Hand the waiting worker its job and start its timeout, and the cap on its work dir's
        growth from here (``disk_cap`` bytes). False when the worker is already gone (it died or
        overstayed before any job): nothing was handed over."""
        assert self._job_path is not None, "this worker was started with its whole job"
        workdir = str(self._job_path.parent)
        disk = DiskCap(workdir, disk_cap) if disk_cap is not None else None
        if not self._running.arm(disk):
            return False
        tmp = self._job_path.with_name(self._job_path.name + ".tmp")
        tmp.write_text(json.dumps(job))
        os.replace(tmp, self._job_path)  # atomic: the worker never reads half a job
        return True

    def wait(self) -> tuple[spawn.Outcome, list[tuple[float, dict]], str | None]:
        if self._result is None:
            try:
                outcome = self._running.wait()
            finally:
                self._reader.release()  # a FIFO whose writer never came (no container started)
            frames, bad = collect(self._reader)
            self._result = (outcome, frames, bad)
        return self._result

    def cancel(self) -> None:
        """Kill and reap the worker (a no-op once it has been waited for)."""
        if self._result is None:
            self._running.cancel()
            self.wait()


def start_worker(
    module: str,
    job: dict,
    *,
    workdir: Path,
    wrapped_by,
    gpu: bool,
    timeout_s: float,
    memory_cap: int,
    writable: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    max_tasks: int | None = None,
    command: Callable[[list[str]], list[str]] | None = None,
    await_s: float | None = None,
    schema: Schema | None = None,
    disk_cap: int | None = None,
) -> WorkerRun:
    """Spawn ``python -m module``. With ``await_s``, ``job`` holds only the boot settings and
    the worker waits up to ``await_s`` seconds for :meth:`WorkerRun.post`; without it, ``job``
    is the whole job and the timeout runs from the spawn. ``schema``: what the worker's frames
    may be (None only for trusted workers); ``disk_cap``: bytes its work dir may grow by, from
    the spawn (or, awaiting, from the post)."""
    stem = module.rsplit(".", 1)[-1]
    boot_path = workdir / f"{stem}-{'boot' if await_s is not None else 'job'}.json"
    job_path = workdir / f"{stem}-job.json" if await_s is not None else None
    argv = [sys.executable, "-m", module, boot_path.name]
    if command is not None:  # e.g. a profiler in front of the worker (sandbox/profile_job.py)
        argv = command(argv)
    wrapped = wrapped_by.wrap(argv, str(workdir), gpu, writable)
    job = {**job, "isolate_network": wrapped.isolate_network}
    if job_path is not None:
        job.update(await_job=job_path.name, await_s=await_s + WORKER_GRACE_S)
    if wrapped.fifo_channel:  # a container cannot inherit our pipe (sandbox/channel.py)
        fifo = workdir / f"{stem}-channel"
        os.mkfifo(fifo, 0o600)
        reader, write_fd = channel.Reader.from_fifo(str(fifo), schema), None
        job["channel_path"] = f"{wrapped.workdir or workdir}/{fifo.name}"
    else:
        read_fd, write_fd = os.pipe()
        reader = channel.Reader(read_fd, schema=schema)
        job["channel_fd"] = write_fd
    boot_path.write_text(json.dumps(job))
    extra = {} if gpu else {"TRITON_INTERPRET": "1", "CUDA_VISIBLE_DEVICES": ""}
    if gpu and (index := assigned_gpu.get()) is not None:
        extra["CUDA_VISIBLE_DEVICES"] = str(index)  # the executor's queue for this GPU
    try:
        running = spawn.start(
            wrapped,
            cwd=str(workdir),
            env=spawn.scrubbed_env(wrapped.workdir or str(workdir), {**extra, **(env or {})}),
            pass_fd=write_fd,
            timeout_s=timeout_s,
            memory_cap=memory_cap,
            max_tasks=max_tasks,
            armed=await_s is None,
            unarmed_s=await_s if await_s is not None else timeout_s,
            disk=DiskCap(str(workdir), disk_cap) if disk_cap is not None else None,
        )
    except BaseException:
        reader.release()
        raise
    return WorkerRun(running, reader, job_path)


def run_worker(module: str, job: dict, **kwargs) -> tuple[spawn.Outcome, list, str | None]:
    """Spawn a worker with its whole job and watch it to its end."""
    return start_worker(module, job, **kwargs).wait()
