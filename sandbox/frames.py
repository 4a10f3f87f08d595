"""The frame schema: what each kind of worker may say on the verdict channel, and nothing more.

Threat row 27: candidate code shares its worker's process, so it can write any bytes on the
channel's descriptor. The orchestrator's reader (``sandbox/channel.py``) checks every frame
against its worker's :class:`Schema` as it arrives. A frame type the worker never sends, a key it
never writes, a value of the wrong type or out of bounds, a second copy of a once-only frame, a
frame before the one it must follow, or anything after the last: each is tampering, and the
first one ends the evaluation (``CHANNEL_TAMPERED``). A frame that passes is safe to read with
plain indexing in ``checks.py`` and ``timing_report.py``: required keys exist, numbers are finite,
strings and lists are bounded, and an output path names a file directly inside ``out/``.

A worker that starts sending a new key or frame type gets it added here in the same change: an
honest worker failing its own schema shows up at once as ``CHANNEL_TAMPERED`` in the tests.
Trusted workers (the reference, the baselines) have no schema; the channel's caps still apply.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import KernelloopError

# A check returns None for a good value, else what is wrong with it.
Check = Callable[[Any], str | None]

# Caps of honest values (tests/test_channel_hardening.py compares them with their sources).
MAX_ERROR = 8000  # worker._clean_error keeps 4000 characters; tracebacks keep the last 4000
MAX_SAMPLES = 2000  # timing.MAX_ITERS timed calls at most
MAX_LAUNCH_RECORDS = 64  # guards.MAX_LAUNCH_RECORDS (32) distinct interpreted launches
MAX_ALTERNATES = 64  # extra outputs of one trial (other program orders, autotune configs)
MAX_NAMES = 1024  # op or function names in one list


class FrameError(KernelloopError, ValueError):
    """A frame its worker would never send."""


# --- value checks --------------------------------------------------------------------------------
def boolean(v: Any) -> str | None:
    return None if isinstance(v, bool) else "not a boolean"


def integer(lo: int, hi: int) -> Check:
    def check(v: Any) -> str | None:
        if type(v) is not int:  # bool is an int subclass: not accepted as a count
            return "not an integer"
        return None if lo <= v <= hi else f"outside [{lo}, {hi}]"

    return check


def number(lo: float, hi: float) -> Check:
    def check(v: Any) -> str | None:
        if type(v) is int:  # compared as an int: a 400-digit one would overflow a float
            return None if lo <= v <= hi else f"outside [{lo}, {hi}]"
        if type(v) is not float or not math.isfinite(v):  # json reads NaN and Infinity
            return "not a finite number"
        return None if lo <= v <= hi else f"outside [{lo}, {hi}]"

    return check


def text(max_len: int) -> Check:
    def check(v: Any) -> str | None:
        if not isinstance(v, str):
            return "not a string"
        return None if len(v) <= max_len else f"longer than {max_len} characters"

    return check


def nullable(inner: Check) -> Check:
    return lambda v: None if v is None else inner(v)


def hex64(v: Any) -> str | None:
    """A sha256 as ``hexdigest()`` writes it."""
    if isinstance(v, str) and len(v) == 64 and all(c in "0123456789abcdef" for c in v):
        return None
    return "not a sha256 hex digest"


def output_path(v: Any) -> str | None:
    """``out/<name>.bin``: the orchestrator joins it to the work dir, so an absolute path
    (``Path(work) / "/etc/passwd"`` is ``/etc/passwd``), ``..`` or another folder would make it
    read a file the worker never wrote."""
    if not isinstance(v, str) or len(v) > 256:
        return "not an output path"
    folder, _, name = v.partition("/")
    if (
        folder != "out"
        or not name.endswith(".bin")
        or len(name) <= len(".bin")
        or name.startswith(".")
        or ".." in name
        or any(c in "/\\" or ord(c) < 32 for c in name)
    ):
        return "not of the form out/<name>.bin"
    return None


def any_dict(v: Any) -> str | None:
    """Advisory records read defensively where they are used (their size is the frame's)."""
    return None if isinstance(v, dict) else "not an object"


def list_of(item: Check, max_items: int, min_items: int = 0) -> Check:
    def check(v: Any) -> str | None:
        if not isinstance(v, list):
            return "not a list"
        if not min_items <= len(v) <= max_items:
            return f"{len(v)} items, not {min_items} to {max_items}"
        for i, x in enumerate(v):
            if (why := item(x)) is not None:
                return f"item {i}: {why}"
        return None

    return check


def dict_of(value: Check, max_items: int, max_key: int = 64) -> Check:
    def check(v: Any) -> str | None:
        if not isinstance(v, dict) or len(v) > max_items:
            return f"not an object of at most {max_items} entries"
        for k, x in v.items():
            if len(k) > max_key:
                return f"a key longer than {max_key} characters"
            if (why := value(x)) is not None:
                return f"{k[:40]!r}: {why}"
        return None

    return check


def record(fields: Mapping[str, Check]) -> Check:
    """An object with exactly these keys."""

    def check(v: Any) -> str | None:
        if not isinstance(v, dict) or v.keys() != fields.keys():
            return f"not an object with keys {sorted(fields)}"
        for k, c in fields.items():
            if (why := c(v[k])) is not None:
                return f"{k}: {why}"
        return None

    return check


# --- frames and streams --------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Frame:
    """One frame type: its keys (besides ``seq`` and ``type``) and where it may appear."""

    required: Mapping[str, Check] = dataclasses.field(default_factory=dict)
    optional: Mapping[str, Check] = dataclasses.field(default_factory=dict)
    # For frames with an ``ok`` flag: keys also required when it is true, or when it is false.
    if_ok: Mapping[str, Check] = dataclasses.field(default_factory=dict)
    if_failed: Mapping[str, Check] = dataclasses.field(default_factory=dict)
    once: bool = True
    after: tuple[str, ...] = ("hello",)  # frame types that must have come before
    last: bool = False  # nothing may follow it


@dataclasses.dataclass(frozen=True)
class Schema:
    worker: str  # for messages: "candidate worker"
    frames: Mapping[str, Frame]

    def checker(self) -> Callable[[dict], None]:
        """A check for one stream's frames, in arrival order (it remembers what came before);
        raises :class:`FrameError` at the first frame the worker would never send."""
        return _Stream(self).check


class _Stream:
    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.seen: set[str] = set()
        self.ended: str | None = None

    def check(self, frame: dict) -> None:
        kind = frame.get("type")
        spec = self.schema.frames.get(kind) if isinstance(kind, str) else None
        if spec is None:
            raise FrameError(f"a frame of a type the {self.schema.worker} never sends")
        if self.ended is not None:
            raise FrameError(f"a {kind!r} frame after the {self.ended!r} frame")
        if spec.once and kind in self.seen:
            raise FrameError(f"a second {kind!r} frame")
        if before := [t for t in spec.after if t not in self.seen]:
            raise FrameError(f"a {kind!r} frame before any {before[0]!r} frame")
        keys = dict(spec.required)
        _check_keys(kind, frame, keys)
        if spec.if_ok or spec.if_failed:
            branch = spec.if_ok if frame["ok"] else spec.if_failed
            _check_keys(kind, frame, branch)
            keys.update(branch)
        for key in frame.keys() - keys.keys() - {"seq", "type"}:
            check = spec.optional.get(key)
            if check is None:
                raise FrameError(f"a {kind!r} frame with an unexpected key {key[:40]!r}")
            if (why := check(frame[key])) is not None:
                raise FrameError(f"{kind!r} frame, {key!r}: {why}")
        self.seen.add(kind)
        if spec.last:
            self.ended = kind


def _check_keys(kind: str, frame: dict, keys: Mapping[str, Check]) -> None:
    for key, check in keys.items():
        if key not in frame:
            raise FrameError(f"a {kind!r} frame without {key!r}")
        if (why := check(frame[key])) is not None:
            raise FrameError(f"{kind!r} frame, {key!r}: {why}")


# --- the workers' schemas ------------------------------------------------------------------------
_SECONDS = number(0.0, 1e7)
_SPANS = dict_of(_SECONDS, max_items=64)  # stopwatch spans: step name -> seconds
_ERROR = text(MAX_ERROR)
_NAMES = list_of(text(200), MAX_NAMES)
_FAILURE = {"kind": text(32), "error": _ERROR}
_HELLO = {"pid": integer(0, 1 << 31), "device": text(16), "network": text(500)}
_WORKER_ERROR = Frame(required={"message": _ERROR, "trace": _ERROR}, last=True)
_ALTERNATE = record({"label": text(200), "output": output_path, "output_sha256": hex64})
# interpreter/coverage.py: per output, elements no kernel store or allowed op left as they are
_UNTRACKED = record(
    {
        "output": integer(0, MAX_NAMES),
        "elements": integer(1, 1 << 53),
        "numel": integer(1, 1 << 53),
        "run": text(200),
    }
)
_COVERAGE = record({"checked": boolean, "untracked": list_of(_UNTRACKED, 64), "note": text(500)})

CANDIDATE = Schema(
    "candidate worker",
    {
        "hello": Frame(required=_HELLO, after=()),
        "build": Frame(
            required={"ok": boolean, "seconds": _SECONDS},
            if_ok={"inherits_reference": boolean},
            if_failed=_FAILURE,
        ),
        "trial": Frame(
            required={"name": text(200), "ok": boolean, "spans": _SPANS},
            if_ok={
                "output": output_path,
                "output_sha256": hex64,
                "inputs_sha256": hex64,
                "devices": list_of(text(16), 64),
                "launches": integer(0, 1 << 53),
                "threads_delta": integer(0, 1 << 20),
                # started during the call, joined or not: a loop can start any number (row 25)
                "threads_started": integer(0, 1 << 53),
                "torch_ops": _NAMES,
                "patched": _NAMES,
                "guards_changed": _NAMES,  # the tripwire's findings (row 24)
            },
            if_failed={"stage": text(32), **_FAILURE},
            # The same trial's outputs under other program orders / autotune configs.
            optional={
                "alternates": list_of(_ALTERNATE, MAX_ALTERNATES),
                "store_coverage": _COVERAGE,  # under the interpreter (threat row 26)
                "notes": list_of(text(500), 32),  # CPU checks skipped, and why (advisory)
            },
            once=False,
            after=("build",),
        ),
        "launches": Frame(
            required={"kernels": list_of(any_dict, MAX_LAUNCH_RECORDS)}, after=("build",)
        ),
        "wall_begin": Frame(required={"calls": integer(1, 1 << 20)}, after=("build",)),
        "wall_end": Frame(required={"calls": integer(1, 1 << 20)}, after=("wall_begin",)),
        "timing": Frame(
            required={
                "times_ms": list_of(number(0.0, 1e7), MAX_SAMPLES, min_items=1),
                "flush_bytes": integer(0, 1 << 50),
                "persisting_l2_reset": boolean,
                "patched": _NAMES,
                "nvml": nullable(any_dict),
                "nvml_unavailable": nullable(text(1000)),
                "kernels": list_of(any_dict, 4096),
                "spans": _SPANS,
            },
            after=("wall_end",),
        ),
        "error": _WORKER_ERROR,
        "done": Frame(last=True),
    },
)

# sandbox/profile_job.py: the candidate's worker under a profiler (advisory, never a verdict).
PROFILE = Schema(
    "profile worker",
    {
        "hello": Frame(required={**_HELLO, "gpu": nullable(text(200))}, after=()),
        "build": Frame(required={"ok": boolean}, if_ok={"seconds": _SECONDS}, if_failed=_FAILURE),
        "profiled": Frame(
            required={"ok": boolean},
            if_ok={"calls": integer(0, 1 << 20), "launches": integer(0, 1 << 53)},
            if_failed=_FAILURE,
            after=("build",),
        ),
        "error": _WORKER_ERROR,
        "done": Frame(last=True),
    },
)

# sandbox/static_job.py: Triton's front end evaluates the candidate's constexpr expressions.
STATIC = Schema(
    "static compile worker",
    {
        "static": Frame(required={"kernels": list_of(any_dict, 4096)}, after=()),
        # its traceback is not trimmed: the channel's frame cap bounds it
        "error": Frame(
            required={"message": text(1 << 18), "trace": text(1 << 18)}, after=(), last=True
        ),
        "done": Frame(after=("static",), last=True),
    },
)
