"""Re-validation: is each entry still correct, and still faster than PyTorch, here and now?

An entry's verdict holds for the environment it was measured in. When the GPU, driver, CUDA,
torch or Triton changed, the entry is marked stale first (dispatch then skips it, even if the
re-run below crashes), then its source is evaluated again on its provenance problem with the one
evaluator. Accepted and still beating PyTorch by its lower bound (the promotion bar): the manifest
gets the new environment, timing and verification and is no longer stale. Otherwise it stays
stale with the reason. An entry for another architecture cannot be re-run on this machine (on a
CPU-only machine, every GPU entry): when its environment differs it is marked stale and the
reason names the GPU it needs.

Shipped entries are part of the installed package and are never written: their status is
computed and reported only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..kernelbench.problem import ProblemError
from . import fingerprint
from .manifest import Manifest, Timing, Verification, interval_triple, now
from .promote import blocker

if TYPE_CHECKING:
    from ..kernelbench.problem import Problem
    from ..sandbox.verdict import Verdict
    from .store import Library

Evaluate = Callable[..., "Verdict"]


def verify(
    library: Library,
    *,
    entry_ids: Iterable[str] | None = None,
    evaluate: Evaluate | None = None,
    changed_only: bool = False,
) -> list[dict[str, Any]]:
    """Re-check entries (all, or ``entry_ids``); one result dict per entry.

    ``evaluate(problem, source, size=..., backend=...) -> Verdict`` defaults to
    :func:`kernelloop.sandbox.evaluate.evaluate`. ``changed_only`` skips the re-run for entries
    whose environment still matches.

    Result fields: ``entry_id``, ``op``, ``location``, ``arch``, ``changed`` (``{field: [was,
    now]}``), ``ran`` (re-evaluated here), ``accepted`` and ``codes`` of that run, ``stale`` and
    ``reason`` after the check, ``written`` (the user entry's manifest was updated),
    ``describe`` (the entry's one-line summary), ``note``.
    """
    if evaluate is None:
        from ..sandbox.evaluate import evaluate
    env, arch = fingerprint.environment(), fingerprint.arch()
    chosen = library.entries() if entry_ids is None else [library.get(e) for e in entry_ids]
    return [_verify_one(library, m, env, arch, evaluate, changed_only) for m in chosen]


def _verify_one(
    library: Library,
    m: Manifest,
    env: dict[str, Any],
    arch: str,
    evaluate: Evaluate,
    changed_only: bool,
) -> dict[str, Any]:
    diff = fingerprint.changes(m.env, env)
    env_note = f"environment changed: {fingerprint.describe_changes(diff)}" if diff else None
    writable = m.location == "user"
    result: dict[str, Any] = {
        "entry_id": m.entry_id,
        "op": m.op,
        "location": m.location,
        "arch": m.arch,
        "changed": {key: list(pair) for key, pair in diff.items()},
        "ran": False,
        "accepted": None,
        "codes": [],
        "note": None if writable else "shipped entry: read-only, status reported only",
    }
    updated = on_disk = m
    if m.arch != arch:
        needs = f"a {m.arch} GPU" if m.arch.startswith("sm_") else f"a {m.arch} machine"
        changed = env_note or "environment changed"
        updated = _stale(m, f"{changed}; re-validation needs {needs} (this machine is {arch})")
    elif changed_only and not diff:
        result["note"] = result["note"] or "environment unchanged; not re-run (--changed-only)"
    else:
        if diff and writable:
            # Recorded before the (long) re-run, so a crash in it leaves the entry out of dispatch.
            on_disk = library.update(_stale(m, f"{env_note}; re-validation in progress"))
        try:
            problem = _problem(m)
        except ProblemError as exc:  # the provenance problem is gone or no longer loads
            reason = f"cannot re-validate: {exc}"
            updated = _stale(m, f"{env_note}; {reason}") if diff else m
            result["note"] = reason
        else:
            verdict = evaluate(
                problem,
                m.source_path.read_text(encoding="utf-8"),
                size=m.provenance.size,
                backend=m.backend,
            )
            result.update(ran=True, accepted=verdict.accepted, codes=list(verdict.codes))
            failed = blocker(verdict, allow_untimed=m.untimed)
            if failed is None:
                updated = _refreshed(m, verdict, env)
            else:
                suffix = f"; {env_note}" if env_note else ""
                updated = _stale(m, f"re-validation failed: {failed}{suffix}")
    written = writable and updated != m
    if writable and updated != on_disk:
        updated = library.update(updated)
    result.update(
        stale=updated.stale,
        reason=updated.stale_reason,
        written=written,
        describe=updated.describe(),
    )
    return result


def _stale(m: Manifest, reason: str) -> Manifest:
    return dataclasses.replace(
        m, verification=dataclasses.replace(m.verification, stale=True, stale_reason=reason)
    )


def _refreshed(m: Manifest, verdict: Verdict, env: dict[str, Any]) -> Manifest:
    timing = verdict.timing  # None only for an untimed entry (blocker() checked)
    return dataclasses.replace(
        m,
        env=env,
        timing=Timing.from_verdict_timing(timing),
        speedup_eager=interval_triple(timing.speedup_eager) if timing else None,
        speedup_compile=interval_triple(timing.speedup_compile) if timing else None,
        verification=Verification(
            verified_at=now(), accepted=True, codes=tuple(verdict.codes), device=verdict.device
        ),
    )


def _problem(m: Manifest) -> Problem:
    """The entry's provenance problem: bundled by id, else the file it was promoted from."""
    from ..kernelbench import loader
    from ..kernelbench.problem import load_file

    prov = m.provenance
    if prov.problem_id in loader.bundled_ids():
        return loader.load_one(prov.problem_id)
    if prov.problem_path and Path(prov.problem_path).is_file():
        return load_file(prov.problem_path, problem_id=prov.problem_id)
    raise ProblemError(
        f"problem {prov.problem_id} is not bundled and its file {prov.problem_path} is gone"
    )
