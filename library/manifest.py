"""One library entry's record: :class:`Manifest`, stored as ``manifest.json`` next to ``kernel.py``.

A manifest says what the kernel is for (op, dtype, shape bucket, GPU architecture), where it was
measured (the environment fingerprint), how fast it was with what spread (timing, speedups with
their bootstrap bounds), where it came from (run, problem, candidate) and when it was last
verified, and whether it is stale (the environment changed or re-validation failed; dispatch skips
stale entries). It round-trips to JSON and carries ``schema_version``.

The entry id names all of that at a glance and is the folder name:
``<op>-<source hash>-<arch>-<dtype>-<bucket>``, each part reduced to ``[A-Za-z0-9_]``. The same
kernel source promoted again for the same arch, dtype and bucket gets the same id (it replaces
the old measurement); a changed source gets a new one.

Pure standard library: ``kernelloop library list`` and ``show`` never import torch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import KernelloopError

# 2: the ``tier`` field. A reader of schema 1 would take an untimed entry for a timed one, so
# the version says it cannot read these.
SCHEMA_VERSION = 2
LOCATIONS = ("user", "shipped")
# "timed": accepted and GPU-timed, faster than PyTorch with confidence; what dispatch uses.
# "untimed": accepted, never timed (a CPU verdict, for trying the model path without a GPU);
# used only where the caller asks for it (``allow_untimed``), and labelled so everywhere.
TIERS = ("timed", "untimed")
SOURCE_HASH_CHARS = 10
# Entry ids and op keys become folder names: one path component, no traversal, no surprises.
ENTRY_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,199}")
OP_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


class ManifestError(KernelloopError, ValueError):
    """A manifest that cannot be read: malformed, or from a newer kernelloop."""


def source_hash(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()[:SOURCE_HASH_CHARS]


def _part(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_") or "x"


def entry_id_for(op: str, source: str, arch: str, dtype: str, bucket: str) -> str:
    """The id of ``source`` as an entry of ``op`` for (arch, dtype, bucket)."""
    return "-".join([_part(op), source_hash(source), _part(arch), _part(dtype), _part(bucket)])


def is_valid_entry_id(entry_id: str) -> bool:
    return bool(ENTRY_ID_RE.fullmatch(entry_id)) and ".." not in entry_id


def is_valid_op(op: str) -> bool:
    return bool(OP_RE.fullmatch(op)) and ".." not in op


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclasses.dataclass(frozen=True)
class Timing:
    """The kernel's measured time and the PyTorch baselines' (milliseconds, medians)."""

    median_ms: float | None = None
    iqr_ms: float | None = None
    n: int | None = None  # timed calls behind the median
    eager_ms: float | None = None
    compile_ms: float | None = None

    @classmethod
    def from_verdict_timing(cls, t: Any) -> Timing:
        """From a :class:`kernelloop.sandbox.verdict.TimingResult` (None: an untimed entry)."""
        if t is None:
            return cls()
        return cls(
            median_ms=t.candidate.median,
            iqr_ms=t.candidate.iqr,
            n=t.candidate.n,
            eager_ms=t.eager.median,
            compile_ms=t.compiled.median if t.compiled is not None else None,
        )


@dataclasses.dataclass(frozen=True)
class Provenance:
    problem_id: str
    run_id: str | None = None
    candidate_id: str | None = None
    size: str | None = None  # the problem's size profile the verdict was measured at
    problem_path: str | None = None  # where the problem file was, for non-bundled problems
    problem_hash: str | None = None  # the problem source's hash at promotion
    # What the verdict checked against (promote.terms_of): another problem with the same op key
    # uses the entry only where these are at least as strict as its own. None: written before
    # they were recorded, so only the problem it was promoted from uses it.
    terms: dict[str, Any] | None = None


@dataclasses.dataclass(frozen=True)
class Verification:
    """The last verdict on this entry (promotion or ``kernelloop library verify``)."""

    verified_at: str
    accepted: bool
    codes: tuple[str, ...]
    device: str
    stale: bool = False
    stale_reason: str | None = None


@dataclasses.dataclass(frozen=True)
class Manifest:
    entry_id: str
    op: str
    backend: str | None
    dtype: str  # "float16", ...
    bucket: str  # OpSpec.bucket of the calls this entry serves
    arch: str  # "sm_90", "cpu", ...
    env: dict[str, Any]  # fingerprint.environment() where it was last verified
    timing: Timing
    speedup_eager: tuple[float, float, float] | None  # (point, low, high); a list in JSON
    speedup_compile: tuple[float, float, float] | None
    provenance: Provenance
    verification: Verification
    created_at: str
    tier: str = "timed"  # one of TIERS
    schema_version: int = SCHEMA_VERSION
    # Where the store found it; not part of the JSON.
    folder: Path | None = dataclasses.field(default=None, compare=False, repr=False)
    location: str = dataclasses.field(default="user", compare=False)

    # --- what the dispatcher reads -----------------------------------------------------------
    @property
    def stale(self) -> bool:
        return self.verification.stale

    @property
    def untimed(self) -> bool:
        return self.tier == "untimed"

    @property
    def stale_reason(self) -> str | None:
        return self.verification.stale_reason

    @property
    def median_ms(self) -> float | None:
        return self.timing.median_ms

    @property
    def source_path(self) -> Path:
        if self.folder is None:
            raise ValueError(f"entry {self.entry_id} is not stored in a library yet")
        return self.folder / "kernel.py"

    @property
    def device(self) -> str:
        if self.untimed:  # where it was verified; the machine's GPU never ran it
            return self.verification.device or self.arch
        return self.env.get("gpu") or self.verification.device or self.arch

    def describe(self) -> str:
        """One line with units and context, e.g. ``1.83x vs eager [1.79, 1.88], 1.21x vs
        torch.compile [1.15, 1.26], 0.412 ms (median, IQR 0.003, n=200) on NVIDIA H100 80GB
        HBM3``; the bracketed figures are the speedups' bootstrap bounds."""
        parts = []
        if self.speedup_eager:
            parts.append(_speedup(self.speedup_eager, "eager"))
        if self.speedup_compile:
            parts.append(_speedup(self.speedup_compile, "torch.compile"))
        if self.timing.median_ms is not None:
            spread = f", IQR {self.timing.iqr_ms:.3g}" if self.timing.iqr_ms is not None else ""
            count = f", n={self.timing.n}" if self.timing.n is not None else ""
            parts.append(f"{self.timing.median_ms:.4g} ms (median{spread}{count})")
        if self.untimed:
            text = f"UNTIMED: verified on {self.device}, never timed"
        else:
            text = (", ".join(parts) or "no timing") + f" on {self.device}"
        if self.stale:
            text += f"; STALE: {self.stale_reason or 'no reason recorded'}"
        return text

    # --- JSON ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name in ("folder", "location"):
                continue
            value = getattr(self, f.name)
            out[f.name] = _plain(
                dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
            )
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Manifest:
        if not isinstance(d, dict):
            raise ManifestError(f"a manifest is a JSON object, not {type(d).__name__}")
        version = d.get("schema_version")
        if not isinstance(version, int) or version < 1:
            raise ManifestError("manifest has no valid schema_version: not a kernelloop entry")
        if version > SCHEMA_VERSION:
            raise ManifestError(
                f"manifest schema {version} is newer than this kernelloop reads "
                f"({SCHEMA_VERSION}): upgrade kernelloop to use this entry"
            )
        try:
            manifest = cls(
                entry_id=d["entry_id"],
                op=d["op"],
                backend=d.get("backend"),
                dtype=d["dtype"],
                bucket=d["bucket"],
                arch=d["arch"],
                env=dict(d.get("env") or {}),
                timing=Timing(**(d.get("timing") or {})),
                speedup_eager=_triple(d.get("speedup_eager"), "speedup_eager"),
                speedup_compile=_triple(d.get("speedup_compile"), "speedup_compile"),
                provenance=Provenance(**d["provenance"]),
                verification=_verification(d["verification"]),
                created_at=d["created_at"],
                tier=d.get("tier", "timed"),
                schema_version=version,
            )
        except KeyError as exc:
            raise ManifestError(f"manifest lacks the field {exc.args[0]!r}") from None
        except TypeError as exc:  # unknown or missing nested fields
            raise ManifestError(f"manifest has a malformed field: {exc}") from None
        if manifest.tier not in TIERS:
            raise ManifestError(f"tier {manifest.tier!r} is not one of {', '.join(TIERS)}")
        for name in ("entry_id", "op", "dtype", "bucket", "arch", "created_at"):
            if not isinstance(getattr(manifest, name), str):
                raise ManifestError(f"manifest field {name!r} must be a string")
        if not is_valid_entry_id(manifest.entry_id):
            raise ManifestError(f"entry id {manifest.entry_id!r} is not a plain folder name")
        if not is_valid_op(manifest.op):
            raise ManifestError(f"op {manifest.op!r} is not a plain folder name")
        return manifest

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ManifestError(f"manifest is not valid JSON: {exc}") from None
        return cls.from_dict(data)


def interval_triple(iv: Any) -> tuple[float, float, float] | None:
    """A :class:`kernelloop.sandbox.stats.Interval` as ``(point, low, high)``."""
    return None if iv is None else (iv.point, iv.low, iv.high)


def _plain(value: Any) -> Any:
    """JSON's own types: tuples become lists, so ``to_dict()`` equals what ``json`` reads back."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _verification(d: dict[str, Any]) -> Verification:
    d = dict(d)
    d["codes"] = tuple(d.get("codes") or ())
    return Verification(**d)


def _triple(value: Any, name: str) -> tuple[float, float, float] | None:
    if value is None:
        return None
    if (
        not isinstance(value, list | tuple)
        or len(value) != 3
        or not all(isinstance(v, int | float) for v in value)
    ):
        raise ManifestError(f"{name} must be [point, low, high] or null, got {value!r}")
    point, low, high = (float(v) for v in value)
    return point, low, high


def _speedup(triple: tuple[float, float, float], baseline: str) -> str:
    point, low, high = triple
    return f"{point:.2f}x vs {baseline} [{low:.2f}, {high:.2f}]"
