"""Promotion: an accepted, GPU-timed kernel that beats PyTorch with confidence becomes an entry.

The bar is the speedup's *lower* bootstrap bound against the best PyTorch path: eager and, where
it was measured, ``torch.compile``. A kernel whose point estimate is 1.1x but whose interval
reaches 0.97x is not reliably faster, and dispatching it could slow the user's model down, so it
stays out. Promotion needs the verdict's timing, so it happens on a GPU; a CPU verdict (the
Triton interpreter) proves correctness only.

The entry's bucket is the op's shape bucket of the problem's inputs at the verdict's size, made on
the ``meta`` device (shapes without memory), so promotion costs nothing however large the problem.

Any problem can be promoted: one an efficiency module registers goes under that op's key, any
other under the key of its normalised op graph (``opkey.py``). With ``allow_untimed`` a verdict
that was never timed (a CPU run) becomes an *untimed* entry, which only callers who ask for that
tier ever use; a verdict *with* a timing must still clear the bar.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from ..errors import KernelloopError
from .manifest import (
    Manifest,
    Provenance,
    Timing,
    Verification,
    entry_id_for,
    interval_triple,
    now,
)

if TYPE_CHECKING:
    from ..kernelbench.problem import Problem
    from ..runs.rows import CandidateRow
    from ..runs.store import RunStore
    from ..sandbox.verdict import Verdict
    from .store import Library


class NotPromotable(KernelloopError):
    """The kernel does not qualify for the library; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def blocker(verdict: Verdict, *, allow_untimed: bool = False) -> str | None:
    """Why ``verdict`` does not qualify for the library, or None when it does (with
    ``allow_untimed``, an accepted verdict without a timing qualifies for the untimed tier)."""
    if not verdict.accepted:
        codes = ", ".join(verdict.codes) or "no reason recorded"
        return f"the evaluator rejected the kernel ({codes})"
    t = verdict.timing
    if t is None and allow_untimed:
        return None
    if t is None:
        note = f" ({verdict.timing_note})" if verdict.timing_note else ""
        return (
            f"needs a GPU timing: this verdict from {verdict.device} is correctness only{note}; "
            "evaluate it on a CUDA GPU to promote it"
        )
    baselines = [("eager", t.speedup_eager)]
    if t.speedup_compile is not None:
        baselines.append(("torch.compile", t.speedup_compile))
    name, worst = min(baselines, key=lambda b: b[1].low)
    if worst.low <= 1.0:
        pct = round(worst.confidence * 100)
        return (
            f"not reliably faster than PyTorch {name} on {t.gpu}: {worst.point:.3f}x with "
            f"{pct}% interval [{worst.low:.3f}, {worst.high:.3f}]; the lower bound must exceed 1.0"
        )
    return None


def op_for(problem: Problem) -> str:
    """The op ``problem`` computes: the registered op whose bundled problems include it, else the
    key of its op graph."""
    from ..kernelbench.opgraph import TraceError
    from . import opkey, ops

    matches = [name for name in ops.names() if problem.id in ops.get(name).problems]
    if len(matches) > 1:
        raise NotPromotable(f"problem {problem.id} belongs to several ops ({', '.join(matches)})")
    if matches:
        return matches[0]
    try:
        return opkey.for_problem(problem)
    except TraceError as exc:
        raise NotPromotable(f"problem {problem.id} has no op key: {exc}") from None


def bucket_of(op: str, problem: Problem, size: str | None) -> str:
    """The op's shape bucket for ``problem``'s inputs at ``size`` (shapes only, no memory)."""
    import torch

    from ..kernelbench.instance import torch_dtype
    from . import opkey, ops

    module = problem.instantiate(problem.overrides_for(size))
    with torch.device("meta"):
        inputs = list(module.get_inputs())
    dtype = torch_dtype(problem.dtype)
    # The evaluator casts floating inputs to the problem's dtype; the bucket sees what it sees.
    tensors = [
        t.to(dtype) if isinstance(t, torch.Tensor) and t.is_floating_point() else t for t in inputs
    ]
    if opkey.is_graph_key(op):
        return opkey.bucket(tensors)
    spec = ops.get(op)
    return spec.bucket(tensors, spec.config_from_init(list(module.get_init_inputs())))


def promote(
    verdict: Verdict,
    source: str,
    problem: Problem,
    *,
    provenance: dict[str, Any],
    library: Library | None = None,
    op: str | None = None,
    allow_untimed: bool = False,
) -> Manifest:
    """Add ``source`` to the user library, or raise :class:`NotPromotable` saying why not.

    ``provenance``: ``run_id`` and ``candidate_id`` (both optional); the problem id, size and
    problem hash are taken from the verdict and the problem.
    """
    from . import fingerprint
    from .store import Library

    reason = blocker(verdict, allow_untimed=allow_untimed)
    if reason:
        raise NotPromotable(reason)
    if verdict.problem_id != problem.id:
        raise ValueError(f"verdict is for {verdict.problem_id!r}, not for problem {problem.id!r}")
    op = op or op_for(problem)
    bucket = bucket_of(op, problem, verdict.size)
    timing = verdict.timing
    arch, env = fingerprint.arch(), fingerprint.environment()
    if timing is not None and env.get("gpu") and timing.gpu != env["gpu"]:
        # The manifest would claim this machine's GPU for another's measurement.
        raise NotPromotable(f"timed on {timing.gpu}, but this machine has {env['gpu']}")
    known = {f.name for f in dataclasses.fields(Provenance)}
    extra = set(provenance) - known
    if extra:
        raise TypeError(f"unknown provenance fields {sorted(extra)}; known: {sorted(known)}")
    prov = Provenance(
        **{
            "problem_id": problem.id,
            "size": verdict.size,
            "problem_path": str(problem.path),
            "problem_hash": problem.source_hash,
            "terms": terms_of(problem),
            **provenance,
        }
    )
    manifest = Manifest(
        entry_id=entry_id_for(op, source, arch, problem.dtype, bucket),
        op=op,
        backend=verdict.backend,
        dtype=problem.dtype,
        bucket=bucket,
        arch=arch,
        env=env,
        timing=Timing.from_verdict_timing(timing),
        speedup_eager=interval_triple(timing.speedup_eager) if timing else None,
        speedup_compile=interval_triple(timing.speedup_compile) if timing else None,
        provenance=prov,
        verification=Verification(
            verified_at=now(), accepted=True, codes=tuple(verdict.codes), device=verdict.device
        ),
        created_at=now(),
        tier="timed" if timing is not None else "untimed",
    )
    return (library or Library.default()).add(manifest, source)


def terms_of(problem: Problem) -> dict[str, Any]:
    """The declarations that set how hard the evaluator checked a kernel for ``problem``."""
    return {
        "atol": float(problem.tolerance["atol"]),
        "rtol": float(problem.tolerance["rtol"]),
        "allow_torch": sorted(problem.allow_torch),
        "allow_tf32": bool(problem.allow_tf32),
        "distributions": sorted(problem.distributions),
    }


def as_strict(manifest: Manifest, problem: Problem) -> bool:
    """Whether ``manifest``'s entry was checked at least as hard as ``problem`` would check it:
    promoted from this very file, or under a tolerance no looser, no torch ops or TF32 the
    problem does not allow, and every input distribution the problem draws. An op key names
    what a graph computes, not how strictly a kernel for it was checked: a problem file that
    declares ``TOLERANCE = {"atol": 0.5}`` must not lend its winner to every file of that key."""
    prov = manifest.provenance
    if prov.problem_hash is not None and prov.problem_hash == problem.source_hash:
        return True
    t = prov.terms
    if not isinstance(t, dict):
        return False
    mine = terms_of(problem)
    try:
        return (
            float(t["atol"]) <= mine["atol"]
            and float(t["rtol"]) <= mine["rtol"]
            and set(t["allow_torch"]) <= set(mine["allow_torch"])
            and (not t["allow_tf32"] or mine["allow_tf32"])
            and set(mine["distributions"]) <= set(t["distributions"])
        )
    except (KeyError, TypeError, ValueError):
        return False


def promote_from_run(
    store: RunStore,
    problem_id: str,
    *,
    problem: Problem | None = None,
    library: Library | None = None,
    allow_untimed: bool = False,
) -> Manifest:
    """Promote the run's best kernel for ``problem_id``, or raise :class:`NotPromotable` saying
    why nothing was.

    "Best" here is the library's own criterion: among accepted candidates, the one whose speedup
    lower bound against the best PyTorch path is highest (the point estimate the campaign ranks
    by can favour a noisy kernel the library would refuse).
    """
    from ..kernelbench import loader
    from ..kernelbench.problem import ProblemError

    accepted = [c for c in store.candidates(problem_id) if c.accepted]
    if not accepted:
        raise NotPromotable(f"no accepted candidate for {problem_id} in run {store.run_id}")
    best = max(accepted, key=_conservative_speedup)
    verdict = store.verdict_for(best.candidate_id)
    if verdict is None:  # accepted rows always have a verdict; a hand-edited run may not
        raise NotPromotable(f"candidate {best.candidate_id} has no stored verdict")
    if problem is None:
        try:
            problem = loader.load_one(problem_id)
        except ProblemError as exc:
            raise NotPromotable(
                f"cannot load problem {problem_id} to bucket its shapes: {exc}"
            ) from None
    source = (store.path / best.source_path).read_text(encoding="utf-8")
    try:
        return promote(
            verdict,
            source,
            problem,
            provenance={"run_id": store.run_id, "candidate_id": best.candidate_id},
            library=library,
            allow_untimed=allow_untimed,
        )
    except NotPromotable as exc:
        raise NotPromotable(f"{best.candidate_id} not promoted: {exc.reason}") from None


def _conservative_speedup(candidate: CandidateRow) -> float:
    lows = [candidate.speedup_eager_low, candidate.speedup_compile_low]
    known = [v for v in lows if v is not None]
    return min(known) if known else float("-inf")
