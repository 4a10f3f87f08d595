"""Start one worker, watch it, and make sure nothing of it outlives the call.

The worker gets a scrubbed environment (no API keys or tokens of any kind), its own session and
process group, a wall-clock timeout (counted from arming: a worker started ahead of need, see
``sandbox/launch.py``, is armed when its job is posted), a resident-memory watchdog over its
whole process tree (an address-space limit cannot be used for CUDA processes, which map huge
virtual ranges), a cap on how much its work dir may grow (``sandbox/disk_watch.py``), and
bounded capture of stdout/stderr (a log flood costs the candidate, never the orchestrator).
:func:`start` returns at once and a thread watches; :func:`run` waits. When it ends, every
process it started is killed: the group, its descendants, and any orphan that escaped with
``setsid`` and was re-parented to us (we are a child subreaper).
"""

from __future__ import annotations

import ctypes
import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time

from .backends.base import Wrapped
from .cgroup import PidsCgroup
from .disk_watch import DiskCap, DiskWatch

PR_SET_CHILD_SUBREAPER = 36
PR_SET_DUMPABLE = 4
HEAD_BYTES = TAIL_BYTES = 8 << 10
# Variables a worker may inherit. Everything else (API keys, tokens, proxies) is dropped.
ENV_ALLOWLIST = (
    "PATH",
    "LANG",
    "LC_ALL",
    "LD_LIBRARY_PATH",
    "CUDA_VISIBLE_DEVICES",
    "CUDA_HOME",
    "CUDA_PATH",
    "NVIDIA_VISIBLE_DEVICES",
    "NVIDIA_DRIVER_CAPABILITIES",
    "TRITON_PTXAS_PATH",
    "TRITON_LIBCUDA_PATH",
    "CC",
)

_live: set[int] = set()  # pids of our workers (orphans of theirs are killed, never these)
# Held while a worker is started and registered, and while orphans are reaped: executors run
# evaluations in threads, and a reaper must never see a sibling's fresh worker as an orphan.
_spawn_lock = threading.Lock()
_subreaper_set = False


def scrubbed_env(workdir: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: os.environ[k] for k in ENV_ALLOWLIST if k in os.environ}
    env.update(
        HOME=workdir,
        TMPDIR=os.path.join(workdir, "tmp"),
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONUNBUFFERED="1",
        PYTHONNOUSERSITE="1",
        TRITON_CACHE_DIR=os.path.join(workdir, ".triton"),
        TORCHINDUCTOR_CACHE_DIR=os.path.join(workdir, ".inductor"),
    )
    env.update(extra or {})
    return env


class _Capture:
    """Keeps the first and last few KiB of a stream and counts the rest."""

    def __init__(self, stream):
        self.head, self.tail, self.total = b"", b"", 0
        self._thread = threading.Thread(target=self._drain, args=(stream,), daemon=True)
        self._thread.start()

    def _drain(self, stream) -> None:
        for chunk in iter(lambda: stream.read(1 << 16), b""):
            self.total += len(chunk)
            if len(self.head) < HEAD_BYTES:
                take = HEAD_BYTES - len(self.head)
                self.head += chunk[:take]
                chunk = chunk[take:]
            self.tail = (self.tail + chunk)[-TAIL_BYTES:]
        stream.close()

    def text(self) -> str:
        self._thread.join(timeout=5)
        body = self.head + self.tail
        dropped = self.total - len(body)
        out = body.decode(errors="replace")
        if dropped > 0:
            head, tail = self.head.decode(errors="replace"), self.tail.decode(errors="replace")
            out = f"{head}\n[... {dropped} bytes dropped ...]\n{tail}"
        return out


@dataclasses.dataclass
class Outcome:
    returncode: int | None
    signal: str | None
    timed_out: bool
    memory_exceeded: bool
    wall_s: float
    peak_rss_bytes: int
    stdout: str
    stderr: str
    isolation: list[str]
    leftovers_killed: int = 0
    warm_s: float = 0.0  # spawned ahead of need: seconds from spawn to arming
    disk_exceeded: str | None = None  # why the work-dir watchdog killed the worker
    peak_disk_bytes: int = 0  # the most the work dir had grown by at a look


def _process_table() -> dict[int, int]:
    """pid -> ppid for every visible process."""
    table: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as fh:
                    stat = fh.read()
            except OSError:
                continue
            rest = stat[stat.rfind(b")") + 2 :].split()
            table[int(entry)] = int(rest[1])
    return table


def _descendants(root: int, table: dict[int, int]) -> set[int]:
    found, frontier = set(), {root}
    while frontier:
        children = {pid for pid, ppid in table.items() if ppid in frontier and pid not in found}
        found |= children
        frontier = children
    return found


def _rss(pids: set[int]) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm") as fh:
                total += int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    return total


def _prepare_orchestrator() -> None:
    """Once per process: adopt orphans (so escaped descendants can be killed), and become
    non-dumpable, so a worker running as our uid cannot read our memory or environment
    through /proc/<pid>/mem or ptrace (it holds the reference outputs and the API key)."""
    global _subreaper_set
    if not _subreaper_set and sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
        _subreaper_set = True


def _kill(pids: set[int]) -> int:
    killed = 0
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
            killed += 1
        except ProcessLookupError:
            continue
    return killed


def _start_ticks(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return -1
    return int(stat[stat.rfind(b")") + 2 :].split()[19])


def _state(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return b""
    return stat[stat.rfind(b")") + 2 :].split()[0]


def _reap(pids: set[int], within_s: float = 2.0) -> None:
    """Collect the exit status of those of ``pids`` that are (now) our children, waiting a
    little for killed ones to die: a child never waited for stays a zombie for as long as we
    run, and a long campaign would fill the process table with them. Callers hold _spawn_lock
    and leave out _live, so a sibling's worker is never waited for here."""
    deadline = time.monotonic() + within_s
    pending = set(pids)
    while pending:
        for pid in list(pending):
            try:
                if os.waitpid(pid, os.WNOHANG)[0] == 0:
                    continue  # ours, not dead yet
            except ChildProcessError:
                pass  # not our child (or already collected)
            pending.discard(pid)
        if not pending or time.monotonic() > deadline:
            return
        time.sleep(0.01)


def _reap_orphans(since_ticks: int, descendants: set[int]) -> int:
    """Kill and reap processes re-parented to us, born after our worker, that are not workers,
    and collect the worker's own ``descendants`` that became our children when it died.

    Only a process started after the worker can be its escaped descendant, which keeps this
    from touching anything else the orchestrating program runs.
    """
    me, killed = os.getpid(), 0
    ours = {pid for pid in descendants if pid not in _live}
    for pid, ppid in _process_table().items():
        if ppid == me and pid not in _live and _start_ticks(pid) >= since_ticks:
            if _state(pid) == b"Z":  # dead already (a zombie has no command line either)
                ours.add(pid)
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as fh:
                    if not fh.read():
                        continue  # kernel threads have no command line; leave them be
            except OSError:
                continue
            killed += _kill({pid})
            ours.add(pid)
    _reap(ours)
    return killed


class Running:
    """A started worker, watched by a thread until it ends; :meth:`wait` gives its Outcome.

    A worker started ahead of need (``armed=False``) is not yet running anything of the
    candidate's: until :meth:`arm`, only the memory watchdog and the ``unarmed_s`` cap apply.
    The wall-clock timeout counts from arming, so the candidate is not charged for start-up.
    """

    def __init__(
        self,
        proc,
        wrapped: Wrapped,
        group,
        isolation,
        limits,
        armed: bool,
        disk: DiskWatch | None,
    ):
        self.proc = proc
        self._wrapped, self._group, self._isolation = wrapped, group, isolation
        self._timeout_s, self._memory_cap, self._unarmed_s = limits
        self._started = time.perf_counter()
        self._armed_at = self._started if armed else None
        self._disk = disk
        self._lock = (
            threading.Lock()
        )  # arming and the watcher's decision to kill exclude each other
        self._ending = False
        self._cancel = threading.Event()
        self._born = _start_ticks(proc.pid)
        self._out, self._err = _Capture(proc.stdout), _Capture(proc.stderr)
        self._outcome: Outcome | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def arm(self, disk: DiskCap | None = None) -> bool:
        """Start the wall-clock timeout now, and the work-dir cap if one is given (its baseline
        is what the folder holds now). False if the worker is gone or being killed: then
        nothing must be handed to it."""
        watch = DiskWatch(disk) if disk is not None else None
        with self._lock:
            if self._ending or self.proc.poll() is not None:
                return False
            self._armed_at = time.perf_counter()
            self._disk = watch
            return True

    def cancel(self) -> None:
        """Kill the worker (and all it started) at the watcher's next look; :meth:`wait` reaps."""
        with self._lock:
            self._ending = True
        self._cancel.set()

    def wait(self) -> Outcome:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._outcome is not None
        return self._outcome

    def _over_time(self, now: float) -> bool:
        if self._armed_at is None:
            return now - self._started > self._unarmed_s
        return now - self._armed_at > self._timeout_s

    def _watch(self) -> None:
        try:
            self._outcome = self._watch_and_clean()
        except BaseException as exc:  # re-raised in wait(), in the caller's thread
            self._error = exc

    def _watch_and_clean(self) -> Outcome:
        proc, group, wrapped = self.proc, self._group, self._wrapped
        timed_out = memory_exceeded = False
        disk_exceeded: str | None = None
        peak, seen = 0, set()
        ended = None
        try:
            while proc.poll() is None:
                seen |= _descendants(proc.pid, _process_table())
                rss = _rss({proc.pid} | seen)
                peak = max(peak, rss)
                watch = self._disk  # set by arm(), from another thread
                over = watch.over(time.perf_counter()) if watch is not None else None
                with self._lock:
                    if rss > self._memory_cap:
                        memory_exceeded = True
                    elif over:
                        disk_exceeded = over
                    elif self._over_time(time.perf_counter()):
                        timed_out = True
                    if memory_exceeded or disk_exceeded or timed_out or self._cancel.is_set():
                        self._ending = True
                        break
                self._cancel.wait(0.05)
        finally:
            with self._lock:
                self._ending = True
            leftovers = _descendants(proc.pid, _process_table()) | seen
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            killed = _kill(leftovers)
            if group:
                killed += group.kill_all()
            if wrapped.finish is not None:
                ended = wrapped.finish()
                killed += ended.killed
            proc.wait()
            if self._disk is not None and not (memory_exceeded or disk_exceeded or timed_out):
                # what it wrote in its last moments, faster than the watchdog looked
                disk_exceeded = self._disk.over(time.perf_counter(), force=True)
            if group:
                group.remove()
            with _spawn_lock:
                _live.discard(proc.pid)
                killed += _reap_orphans(self._born, leftovers)
        now = time.perf_counter()
        code = proc.returncode
        sig = signal.Signals(-code).name if code is not None and code < 0 else None
        if ended is not None:
            memory_exceeded = memory_exceeded or ended.oom_killed
            peak = max(peak, ended.peak_memory_bytes)
            sig = sig or ended.signal
        armed_at = self._armed_at if self._armed_at is not None else now
        return Outcome(
            returncode=code,
            signal=sig,
            timed_out=timed_out,
            memory_exceeded=memory_exceeded,
            wall_s=now - armed_at,
            peak_rss_bytes=peak,
            stdout=self._out.text(),
            stderr=self._err.text(),
            isolation=self._isolation,
            leftovers_killed=killed,
            warm_s=armed_at - self._started,
            disk_exceeded=disk_exceeded,
            peak_disk_bytes=self._disk.peak if self._disk is not None else 0,
        )


def start(
    wrapped: Wrapped,
    *,
    cwd: str,
    env: dict[str, str],
    pass_fd: int | None,
    timeout_s: float,
    memory_cap: int,
    max_tasks: int | None = None,
    armed: bool = True,
    unarmed_s: float = 3600.0,
    disk: DiskCap | None = None,
) -> Running:
    """Spawn the worker and return at once; a thread watches it from here on. ``disk`` caps
    its folder's growth from now (an armed start) or from :meth:`Running.arm`."""
    _prepare_orchestrator()
    isolation = wrapped.isolation
    group = None
    if wrapped.launch is not None:
        # A container: its own cgroup caps memory and tasks; what we spawn is the attaching client.
        launched = wrapped.launch(env, memory_cap, max_tasks)
        argv, env = launched.argv, launched.env
        if max_tasks:
            isolation = [*isolation, f"pids-cgroup({max_tasks})"]  # the container's own
    else:
        group = PidsCgroup.create(max_tasks) if max_tasks else None
        argv = group.wrap(wrapped.argv) if group else wrapped.argv
        if group:
            isolation = [*isolation, f"pids-cgroup({max_tasks})"]
    # measured before the worker can write: what is in its folder now is not its doing
    watch = DiskWatch(disk) if armed and disk is not None else None
    try:
        with _spawn_lock:  # a concurrent _reap_orphans must not take this child for an orphan
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(pass_fd,) if pass_fd is not None else (),
                start_new_session=True,
            )
            _live.add(proc.pid)
    except BaseException:
        if pass_fd is not None:
            os.close(pass_fd)  # the reader then sees end-of-file instead of waiting forever
        if wrapped.finish is not None:
            wrapped.finish()
        if group:
            group.remove()
        raise
    if pass_fd is not None:
        os.close(pass_fd)  # the worker holds the only write end: EOF arrives when it is gone
    limits = (timeout_s, memory_cap, unarmed_s)
    return Running(proc, wrapped, group, isolation, limits, armed, watch)


def run(wrapped: Wrapped, **kwargs) -> Outcome:
    """Start a worker, armed at once, and watch it to its end."""
    return start(wrapped, **kwargs).wait()
