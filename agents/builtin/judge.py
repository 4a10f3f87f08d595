"""The builtin Judge: diagnoses the best measured config and proposes the next ones.

Advice is ``{"diagnosis": ..., "proposals": [{"segment", "config", "why"}]}`` for the builtin
coder, or ``{"halt": reason}`` when there is nothing left to do: no correct kernel to tune (a
template bug: the verdict says what failed), no timing on this machine (CPU: correctness is
verified, speed cannot be measured), or no untried neighbour of the best config.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..roles import Judgement, JudgeRequest
from . import search
from .plan import main_segment
from .templates import BY_NAME

if TYPE_CHECKING:
    from ...runs.rows import CandidateRow


class BuiltinJudge:
    name = "builtin"
    # Without a GPU timing the search has nothing to move on: it stops once verified.
    reads_untimed_resources = False

    def __init__(self, coder) -> None:
        self.coder = coder  # the BuiltinCoder: its plan names the segments and their knobs

    def advise(self, request: JudgeRequest) -> Judgement:
        # The search reads every measured candidate from the run store, not just this round's.
        ctx = request.ctx
        _, pl, _ = self.coder.planned(ctx)
        main = main_segment(pl.segments)
        rows = [r for r in ctx.store.candidates(ctx.problem.id) if r.accepted is not None]
        trials, ids = [], {}
        for row in rows:
            configs = _configs(row)
            if main is None or main >= len(configs):
                continue
            trial = search.Trial(configs[main], bool(row.accepted), row.median_ms)
            trials.append(trial)
            ids[id(trial)] = row.candidate_id
        if not any(t.accepted for t in trials):
            retry = _after_resources_ran_out(ctx, pl, rows, main)
            if retry is not None:
                return Judgement(retry)
            codes = sorted({c for r in rows for c in (r.codes or [])})
            return Judgement({"halt": f"the builtin kernel was rejected ({', '.join(codes)})"})
        best = search.best_trial(trials)
        if best is None:
            device = _device(ctx, rows)
            halt = f"verified, not timed on {device}: the config search needs a GPU"
            return Judgement({"halt": halt})
        feedback = search.Feedback.from_measurements(_measured(ctx, ids[id(best)]))
        knobs = BY_NAME[pl.segments[main].template].knobs
        proposals = search.next_configs(knobs, trials, feedback, ctx.options.candidates)
        if not proposals:
            halt = (
                "search done: no untried neighbour of the best config "
                f"({len(trials)} configs measured)"
            )
            return Judgement({"halt": halt})
        diagnosis = search.diagnose(feedback, knobs)
        advice = {
            "diagnosis": "; ".join(dict.fromkeys(why for _, _, why in diagnosis)) or "no limiter",
            "best": {"config": best.config, "ms": best.ms},
            "proposals": [{"segment": main, "config": p.config, "why": p.why} for p in proposals],
        }
        return Judgement(advice)


# What Triton and ptxas say when a config asks for more than the GPU has (shared memory,
# registers, threads): not a wrong kernel, a config too big for this GPU.
_RESOURCES = re.compile(
    r"OutOfResources|out of resource|too many resources|uses too much shared data", re.I
)
_SEGMENT = re.compile(r"\b_s(\d+)_")  # generated kernels are named _s<segment>_<kernel>


def _configs(row: CandidateRow) -> list[dict]:
    """The config of every segment, as the builtin coder recorded it with the candidate; none
    for another Coder's kernel or one stored before the run store kept them."""
    return (row.builtin_config or {}).get("configs") or []


def _after_resources_ran_out(ctx, pl, rows: list[CandidateRow], main: int | None) -> dict | None:
    """Smaller configs for the kernel that did not fit, when every rejection so far was for
    resources: the default tiles are sized for an H100-class GPU and may not fit another."""
    messages = []
    for row in rows:
        verdict = ctx.store.verdict_for(row.candidate_id)
        found = [r.message for r in (verdict.reasons if verdict else [])]
        if not any(_RESOURCES.search(m) for m in found):
            return None  # a kernel that fits and still fails is wrong: smaller tiles won't help
        messages += [m for m in found if _RESOURCES.search(m)]
    seg = main
    if named := _SEGMENT.search(messages[-1]) if messages else None:
        seg = int(named.group(1)) if int(named.group(1)) < len(pl.segments) else main
    if seg is None or pl.segments[seg].template == "layout":
        return None
    tried = []
    for row in rows:
        configs = _configs(row)
        if seg < len(configs):
            tried.append(configs[seg])
    if not tried:
        return None
    knobs = BY_NAME[pl.segments[seg].template].knobs
    proposals = search.smaller_configs(knobs, tried[-1], tried, ctx.options.candidates)
    if not proposals:
        return None
    return {
        "diagnosis": f"a kernel did not fit the GPU: {messages[-1][:200]}",
        "proposals": [{"segment": seg, "config": p.config, "why": p.why} for p in proposals],
    }


def _measured(ctx, candidate_id: str) -> dict | None:
    """The measurements the profile step recorded for ``candidate_id`` (latest wins)."""
    found = None
    for e in ctx.store.events(ctx.problem.id):
        if e.kind == "measured" and e.payload.get("candidate") == candidate_id:
            found = e.payload
    return found


def _device(ctx, rows: list[CandidateRow]) -> str:
    for row in rows:
        verdict = ctx.store.verdict_for(row.candidate_id)
        if verdict is not None:
            return verdict.device
    return "this machine"
