"""The verdict channel: a dedicated pipe from a worker to the orchestrator.

Results never travel on stdout/stderr (a candidate can print anything there). Each frame is
``MAGIC | u32 length | JSON`` and carries a sequence number; the orchestrator accepts frames only
in order and only of the types the protocol expects next. A candidate that finds the descriptor
and writes to it produces a malformed, duplicated or out-of-order frame, which is rejected as
``CHANNEL_TAMPERED`` rather than believed. Each frame is also checked, as it arrives, against its
worker's schema (``sandbox/frames.py``), and a worker's stream is capped in frame size, frame count
and total bytes: the first bad frame, or a flood, stops the reading there (threat row 27), so the
orchestrator never holds more than the caps. Bulk data (tensors) goes through files in the
worker's directory and is checked on arrival; frames stay small.

A worker inside a container cannot inherit a descriptor from us (``docker start`` passes only
stdio), so there the channel is a FIFO in the work dir: :meth:`Reader.from_fifo` opens the read end
before the worker starts, :func:`open_fifo_writer` opens the write end in the worker and unlinks the
path before any candidate code exists, so the candidate cannot open a second end.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import select
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

from ..errors import KernelloopError
from .frames import FrameError, Schema

MAGIC = b"KLF1"
# The largest frame an honest worker sends is a GPU timing frame: 2000 samples at most (~40 KB)
# and a record per compiled kernel. Four times that leaves room; more is never read.
MAX_FRAME = 256 << 10
# Per worker: an honest candidate worker sends tens of frames, well under 1 MiB in all. Past
# either cap the stream is a flood, and reading stops (CHANNEL_TAMPERED): parsed frames are a few
# times their bytes, so this bounds what one worker can make the orchestrator hold.
MAX_FRAMES = 4096
MAX_BYTES = 16 << 20


class ChannelError(KernelloopError):
    """The stream is not a well-formed sequence of frames."""


class Writer:
    """Worker side. ``send`` is the only way results leave a worker."""

    def __init__(self, fd: int):
        self._fd = fd
        self._seq = 0

    def send(self, frame_type: str, /, **payload: Any) -> None:
        body = json.dumps({"seq": self._seq, "type": frame_type, **payload}, default=str).encode()
        self._seq += 1
        data = MAGIC + struct.pack("<I", len(body)) + body
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]


class Reader:
    """Orchestrator side: a thread drains the pipe, stamping each frame with its arrival time.

    Stamping happens here, outside the worker, so the wall-clock cross-check of the timing loop is
    out of the candidate's reach (threat rows 3 and 6).
    """

    def __init__(self, fd: int, fifo: str | None = None, schema: Schema | None = None):
        self._fd = fd
        self._fifo = fifo
        self._frames: queue.Queue[tuple[float, dict[str, Any] | ChannelError | None]] = (
            queue.Queue()
        )
        self._expected_seq = 0
        self._count = self._bytes = 0
        self._check = schema.checker() if schema is not None else None  # None: a trusted worker
        self._lock = threading.Lock()
        self._bad: ChannelError | None = None
        self._on_bad: Callable[[], None] | None = None
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _read_exact(self, n: int) -> bytes:
        """``n`` bytes, or fewer at end of stream."""
        chunks, remaining = [], n
        while remaining:
            chunk = os.read(self._fd, min(remaining, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    @classmethod
    def from_fifo(cls, path: str, schema: Schema | None = None) -> Reader:
        """The read end of a FIFO no writer has opened yet. Non-blocking open succeeds without a
        writer; the descriptor is then made blocking, and the pump first waits in ``poll`` for
        the writer, because ``read`` on a FIFO that has no writer returns end-of-file at once."""
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        os.set_blocking(fd, True)
        return cls(fd, fifo=path, schema=schema)

    def on_bad(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (from the pump's thread) at the first bad frame, or now if one came
        already: the worker that wrote it has nothing more to say that would be believed."""
        with self._lock:
            self._on_bad, bad = callback, self._bad
        if bad is not None:
            callback()

    def release(self) -> None:
        """After the worker is gone: a FIFO whose writer never came would keep the pump in
        ``poll``; opening and closing a write end ends its wait with end-of-file."""
        if self._fifo is None:
            return
        with contextlib.suppress(OSError):  # the pump already closed its end: nothing waits
            os.close(os.open(self._fifo, os.O_WRONLY | os.O_NONBLOCK))
        with contextlib.suppress(OSError):
            os.unlink(self._fifo)

    def _pump(self) -> None:
        try:
            if self._fifo is not None:
                poller = select.poll()
                poller.register(self._fd, select.POLLIN)
                poller.poll()  # a writer connected (data or hang-up), or release() was called
            while True:
                frame = self._next_frame()
                if frame is None:
                    break
                self._frames.put((time.perf_counter(), frame))
        except ChannelError as exc:
            self._tampered(exc)
        except OSError:
            pass
        except Exception as exc:  # a frame our checks choke on is still the writer's doing
            self._tampered(ChannelError(f"a frame that could not be checked ({exc!r:.200})"))
        finally:
            self._frames.put((time.perf_counter(), None))
            os.close(self._fd)

    def _next_frame(self) -> dict[str, Any] | None:
        head = self._read_exact(8)
        if not head:
            return None  # end of stream between frames
        if len(head) < 8:
            raise ChannelError("frame cut short")
        if head[:4] != MAGIC:
            raise ChannelError("bytes on the channel that are not a frame")
        (length,) = struct.unpack("<I", head[4:])
        if length > MAX_FRAME:
            raise ChannelError(f"a frame of {length} bytes (at most {MAX_FRAME})")
        self._count += 1
        self._bytes += 8 + length
        if self._count > MAX_FRAMES or self._bytes > MAX_BYTES:
            raise ChannelError(
                f"a flood of frames (more than {MAX_FRAMES} frames or {MAX_BYTES >> 20} MiB)"
            )
        body = self._read_exact(length)
        if len(body) < length:
            raise ChannelError("frame cut short")
        try:
            frame = json.loads(body)
        except (ValueError, RecursionError):  # RecursionError: nesting deeper than json parses
            raise ChannelError("frame is not JSON") from None
        seq = frame.get("seq") if isinstance(frame, dict) else None
        if type(seq) is not int or seq != self._expected_seq:  # True == 1 and 1.0 == 1: no
            raise ChannelError("frame out of sequence (forged or duplicated)")
        self._expected_seq += 1
        if self._check is not None:
            try:
                self._check(frame)
            except FrameError as exc:
                raise ChannelError(str(exc)) from None
        return frame

    def _tampered(self, exc: ChannelError) -> None:
        """The first bad frame ends the stream: nothing after it is read or kept (the pump closes
        the descriptor, so the writer's next frame fails), and the owner may stop the worker."""
        self._frames.put((time.perf_counter(), exc))
        with self._lock:
            self._bad, callback = exc, self._on_bad
        if callback is not None:
            callback()

    def next(self, timeout: float) -> tuple[float, dict[str, Any] | ChannelError | None]:
        """The next frame with its arrival time; ``None`` at end of stream.

        Raises ``queue.Empty`` after ``timeout`` seconds without a frame.
        """
        return self._frames.get(timeout=timeout)


def open_fifo_writer(path: str) -> int:
    """Worker side of a FIFO channel: open the write end, then remove the name so that nothing
    started later in this sandbox (the candidate) can open the FIFO, for reading or writing."""
    fd = os.open(path, os.O_WRONLY)
    os.unlink(path)
    return fd
