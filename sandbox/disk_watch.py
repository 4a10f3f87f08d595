"""The cap on a worker's work dir, checked by the watchdog thread of ``sandbox/spawn.py``.

Threat row 29: the work dir is on the host's disk, and a candidate under the per-file size limit
(``RLIMIT_FSIZE``) can still write many files until the host's disk is full. A size-limited
tmpfs would need root under some backends; walking the folder works under all of them. The
evaluator derives each cap from what the evaluation legitimately writes (``evaluate._disk_cap``);
past it the watchdog kills the worker and its verdict says ``DISK_LIMIT``.
"""

from __future__ import annotations

import dataclasses
import os
import stat

EVERY_S = 0.2  # between two walks: a few hundred MB written past the cap at most
# More files and folders than this is itself over the cap, so that one walk stays within
# milliseconds. An honest worker writes tens (inputs, outputs, a Triton cache per kernel).
MAX_ENTRIES = 20_000


@dataclasses.dataclass(frozen=True)
class DiskCap:
    """How much a worker's folder may grow from the moment its job is posted: what was there
    before (the trusted reference's inputs and parameters) does not count."""

    path: str
    cap_bytes: int


def usage(root: str) -> tuple[int, str | None]:
    """Bytes on disk under ``root`` as ``du`` counts them (allocated blocks, so a sparse file
    costs what it holds; a hard-linked file once), and why that is not the whole story, if it
    is not: too many entries to walk cheaply, or a folder we may not read."""
    total, entries, linked, stack = 0, 0, set(), [root]
    while stack:
        try:
            listing = os.scandir(stack.pop())
        except FileNotFoundError:  # removed while we walk
            continue
        except OSError as exc:  # e.g. a folder the candidate made unreadable to hide its files
            return total, f"a folder in it cannot be read ({exc.strerror})"
        with listing:
            for entry in listing:
                entries += 1
                if entries > MAX_ENTRIES:
                    return total, f"it holds more than {MAX_ENTRIES} files and folders"
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    stack.append(entry.path)
                elif st.st_nlink > 1:
                    if (st.st_dev, st.st_ino) in linked:
                        continue
                    linked.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total, None


class DiskWatch:
    """The watchdog's view of one work dir: :meth:`over` walks it when a look is due."""

    def __init__(self, cap: DiskCap):
        self.cap = cap
        self.baseline, _ = usage(cap.path)
        self.peak = 0
        self._due = 0.0

    def over(self, now: float, *, force: bool = False) -> str | None:
        """Why the folder is past its cap, if it is; it is walked at most every EVERY_S."""
        if now < self._due and not force:
            return None
        self._due = now + EVERY_S
        used, why = usage(self.cap.path)
        grown = max(0, used - self.baseline)
        self.peak = max(self.peak, grown)
        cap = f"{self.cap.cap_bytes / 2**20:,.1f} MiB"
        if why is not None:
            return f"the work dir's size is unknown: {why} (its cap: {cap})"
        if grown > self.cap.cap_bytes:
            return f"the work dir grew by {grown / 2**20:,.1f} MiB, past its cap of {cap}"
        return None
