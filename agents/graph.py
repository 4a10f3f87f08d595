"""The campaign graph for one problem, as LangGraph nodes and pure routing functions.

    baseline -> propose -> evaluate -> profile -> judge -> decide -> (propose | END)

- ``propose`` asks the Coder for K candidates concurrently (initial, repair or optimize mode);
- ``evaluate`` runs each through the one evaluator (skipping any already judged: resume);
- ``profile`` summarises the best correct candidate of the round (or the failure);
- ``judge`` turns that into one concrete next step (repair: the error; optimize: the bottleneck);
- ``decide`` keeps the best verified kernel (children branch from it, never blindly from the
  latest), counts plateau rounds, and stops on rounds, plateau or budget.

Nodes return partial state updates; only the LLM-calling nodes retry (inside the client).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from langgraph.graph import END, START, StateGraph

from .context import CampaignContext
from .roles import CoderRequest, JudgeRequest
from .state import Attempt, ProblemState

if TYPE_CHECKING:
    from ..runs.rows import CandidateRow

NODES = ("baseline", "propose", "evaluate", "profile", "judge", "decide")


def build(ctx: CampaignContext, checkpointer=None):
    """A compiled graph bound to one problem's context."""
    g = StateGraph(ProblemState)
    g.add_node("baseline", lambda s: baseline(ctx, s))
    g.add_node("propose", lambda s: propose(ctx, s))
    g.add_node("evaluate", lambda s: evaluate(ctx, s))
    g.add_node("profile", lambda s: profile(ctx, s))
    g.add_node("judge", lambda s: advise(ctx, s))
    g.add_node("decide", lambda s: decide(ctx, s))
    g.add_edge(START, "baseline")
    g.add_conditional_edges("baseline", route_after_baseline, ["propose", END])
    g.add_edge("propose", "evaluate")
    g.add_edge("evaluate", "profile")
    g.add_edge("profile", "judge")
    g.add_edge("judge", "decide")
    g.add_conditional_edges("decide", route_after_decide, ["propose", END])
    return g.compile(checkpointer=checkpointer)


# --- routing (pure) -----------------------------------------------------------------------------
def route_after_baseline(state: ProblemState) -> str:
    return END if state.get("stop_reason") else "propose"


def route_after_decide(state: ProblemState) -> str:
    return END if state.get("stop_reason") else "propose"


# --- nodes --------------------------------------------------------------------------------------
def baseline(ctx: CampaignContext, state: ProblemState) -> dict[str, Any]:
    ctx.store.start_problem(ctx.problem.id)
    ctx.store.event("problem_started", ctx.problem.id, summary=ctx.problem.summary)
    stop = ctx.over_budget()
    if stop:  # the budget was spent before this problem's first round: `--resume` takes it up
        ctx.store.finish_problem(ctx.problem.id, "interrupted", stop)
    elif stop := _not_evaluable(ctx):  # a random reference, a size this machine cannot hold
        ctx.store.event("not_evaluable", ctx.problem.id, reason=stop)
        ctx.store.finish_problem(ctx.problem.id, "unsolved", stop)
    return {
        "problem_id": ctx.problem.id,
        "round": 0,
        "mode": "initial",
        "round_ids": [],
        "best_id": None,
        "best_speedup": None,
        "advice": None,
        "profile": None,
        "history": [],
        "no_code": 0,
        "stale_rounds": 0,
        "stop_reason": stop,
    }


def _not_evaluable(ctx: CampaignContext) -> str | None:
    from ..kernelbench import preflight
    from ..kernelbench.problem import ProblemError

    try:
        device = "cuda" if _cuda() else "cpu"  # as the evaluator picks it
        preflight.check(ctx.problem, ctx.overrides, device, ctx.size)
    except ProblemError as exc:
        return f"not evaluable: {exc}"
    return None


def _cuda() -> bool:
    from ..sandbox.evaluate import cuda_available

    return cuda_available()


def propose(ctx: CampaignContext, state: ProblemState) -> dict[str, Any]:
    rnd, k, mode = state["round"], ctx.options.candidates, state["mode"]
    failing = None
    if mode == "repair" and state.get("round_ids"):
        failing = _first_failure(ctx, state["round_ids"])
    # Optimize children branch from the best verified kernel; repairs from the failing one.
    parent = state.get("best_id") if mode == "optimize" else (failing or {}).get("candidate_id")
    parent_row = ctx.store.candidate(parent) if parent else None
    parent_source = _source(ctx, parent) if parent else None

    errors: list[str] = []
    halts: list[str] = []
    agent = _coder(ctx)

    def one(idx: int) -> str | None:
        request = CoderRequest(
            ctx, state, parent_source, failing, index=idx, count=k, parent=parent_row
        )
        proposed = agent.propose(request)
        if proposed.source is not None:
            return ctx.store.add_candidate(
                ctx.problem.id,
                rnd,
                idx,
                proposed.source,
                parent_id=parent,
                mode=mode,
                builtin_config=proposed.builtin_config,
            )
        if proposed.error is not None:
            ctx.store.event("coder_failed", ctx.problem.id, round=rnd, error=proposed.error)
            errors.append(proposed.error)
        if proposed.halt is not None:
            halts.append(proposed.halt)
        return "" if proposed.skip or proposed.halt else None

    with ThreadPoolExecutor(max_workers=max(1, k)) as pool:
        ids = list(pool.map(one, range(k)))
    if rnd == 0 and mode == "initial" and ctx.options.seed_builtin and agent.name != "builtin":
        ids.append(_builtin_seed(ctx, state, slot=k))
    if len(errors) == k:  # the endpoint itself is failing: stop loudly, resumable, not silently
        from .llm import LLMError

        raise LLMError(f"every Coder call of round {rnd} failed; last error: {errors[-1]}")
    update: dict[str, Any] = {
        "round_ids": [i for i in ids if i],
        "no_code": sum(1 for i in ids if i is None),
    }
    if halts and not update["round_ids"]:  # e.g. "no template for: cumprod"
        ctx.store.event("coder_halted", ctx.problem.id, round=rnd, reason=halts[0])
        update["halt"] = halts[0]
    return update


def evaluate(ctx: CampaignContext, state: ProblemState) -> dict[str, Any]:
    # The whole round goes to the executor at once (it decides what runs side by side: one
    # candidate per GPU); verdicts are recorded in proposal order. A plain callable (tests) is
    # called one candidate at a time. Candidates judged before a crash are not run again.
    pending = [cid for cid in state["round_ids"] if ctx.store.verdict_for(cid) is None]
    submit = getattr(ctx.evaluate, "submit", None)
    futures = {cid: submit(ctx.problem, _source(ctx, cid)) for cid in pending} if submit else {}
    for cid in pending:
        try:
            if submit:
                verdict = futures[cid].result()
            else:
                verdict = ctx.evaluate(ctx.problem, _source(ctx, cid))
        except Exception as exc:  # ours, not the candidate's: it fails, the campaign goes on
            from ..sandbox.evaluate import failed_evaluation

            verdict = failed_evaluation(ctx.problem, exc)
        ctx.store.record_verdict(cid, verdict)
        ctx.store.event(
            "evaluated",
            ctx.problem.id,
            candidate=cid,
            accepted=verdict.accepted,
            codes=verdict.codes,
        )
    return {}


def profile(ctx: CampaignContext, state: ProblemState) -> dict[str, Any]:
    """Hardware feedback on the round's best correct kernel, the one the Judge will be shown:
    timing and roofline from its verdict, compiler resources (CUDA: ptxas's registers and
    spills; Triton: what the driver reported for the kernels it loaded, or, without a GPU, the
    interpreted launches compiled for sm_90), and Nsight Compute counters where a GPU and ncu
    are present."""
    best = _round_best(ctx, state["round_ids"])
    if best is None:
        return {"profile": None}
    from ..feedback import candidate_resources, static_resources, summary

    cid = best.candidate_id
    verdict, source = ctx.store.verdict_for(cid), _source(ctx, cid)
    statics = None
    if verdict.backend == "cuda":  # compiling is not running: NVRTC only reads the string
        try:
            statics = candidate_resources.from_candidate_source(source, "cuda")
        except Exception as exc:  # feedback is optional; the loop goes on without it
            ctx.store.event("profile_note", ctx.problem.id, candidate=cid, note=str(exc)[:300])
    elif verdict.timing is not None and verdict.timing.kernels:  # Triton, compiled on the GPU
        statics = static_resources.from_launched(verdict.timing.kernels)
    elif verdict.launches and _llm_judge_reads_next(ctx, state):  # Triton, run interpreted
        statics = _compiled_from_launches(ctx, cid, source, verdict)
    counters = None
    if verdict.timing is not None and _another_round(ctx, state):
        counters = _ncu_counters(ctx, cid, source)
    elif verdict.timing is not None:
        # Nsight Compute replays every kernel (tens of seconds at GPU size) and its counters
        # serve only the next round's Judge: the last round has none.
        ctx.store.event("profile_note", ctx.problem.id, candidate=cid, note=NCU_LAST_ROUND)
    best_id = state.get("best_id")
    previous = ctx.store.verdict_for(best_id) if best_id and best_id != cid else None
    text = summary.judge_summary(verdict, static=statics, ncu=counters, previous=previous)
    ctx.store.event("profiled", ctx.problem.id, candidate=cid, summary=text)
    from .builtin.measure import measurements

    measured = measurements(verdict, counters, statics, dtype=ctx.problem.dtype)
    ctx.store.event("measured", ctx.problem.id, candidate=cid, **measured)
    return {"profile": text}


NCU_LAST_ROUND = "Nsight Compute skipped: the last round, no Judge reads its counters"


def _another_round(ctx: CampaignContext, state: ProblemState) -> bool:
    """Whether a round follows this one (only the rounds limit is known in advance)."""
    return state["round"] + 1 < ctx.options.rounds


def _llm_judge_reads_next(ctx: CampaignContext, state: ProblemState) -> bool:
    """Another round follows and its Judge reads compiled resources of untimed kernels."""
    return _another_round(ctx, state) and _judge(ctx).reads_untimed_resources


def _compiled_from_launches(ctx: CampaignContext, cid: str, source: str, verdict) -> list | None:
    """Registers, spills and shared memory for sm_90 of the Triton kernels a CPU evaluation ran
    under the interpreter: their recorded launches compiled in a sandbox worker (seconds)."""
    from ..sandbox import static_job

    try:
        return static_job.compile_recorded(source, verdict.launches, sandbox=ctx.options.sandbox)
    except RuntimeError as exc:  # feedback is optional; the loop goes on without it
        ctx.store.event("profile_note", ctx.problem.id, candidate=cid, note=str(exc)[:500])
        return None


def _ncu_counters(ctx: CampaignContext, cid: str, source: str) -> dict | None:
    from ..feedback import ncu

    try:
        report = ncu.profile_candidate(
            ctx.problem,
            source,
            size=ctx.options.size,
            sets=ctx.options.sets,
            sandbox=ctx.options.sandbox,
        )
    except ncu.NcuError as exc:  # no ncu, no kernel matched, counters for admins: say so, go on
        ctx.store.event("profile_note", ctx.problem.id, candidate=cid, note=str(exc)[:500])
        return None
    return report.aggregate()


def advise(ctx: CampaignContext, state: ProblemState) -> dict[str, Any]:
    rnd = state["round"]
    if rnd + 1 >= ctx.options.rounds or state.get("halt"):
        return {"advice": None}  # no next round to advise
    best_round = _round_best(ctx, state["round_ids"])
    # Repair when this round produced nothing correct (the Judge reads the failure); otherwise
    # optimize this round's best correct kernel (the Judge reads its measurements).
    mode = "optimize" if best_round else "repair"
    failing = _first_failure(ctx, state["round_ids"]) if mode == "repair" else None
    judgement = _judge(ctx).advise(JudgeRequest(ctx, state, mode, best_round, failing))
    advice = judgement.advice
    ctx.store.add_advice(
        ctx.problem.id,
        rnd,
        mode,
        advice,
        llm_call_id=judgement.call_id,
        candidate_id=best_round.candidate_id if best_round else None,
    )
    return {"advice": advice, "halt": advice.get("halt")}


def decide(ctx: CampaignContext, state: ProblemState) -> dict[str, Any]:
    rnd = state["round"]
    history = list(state.get("history", []))
    for cid in state["round_ids"]:
        c = ctx.store.candidate(cid)  # round_ids come from add_candidate: the row exists
        history.append(
            Attempt(
                round=rnd,
                candidate_id=cid,
                mode=state["mode"],
                accepted=c.accepted,
                codes=list(c.codes or []),
                speedup=c.speedup_eager,
                note="",
            )
        )
    best = ctx.store.best_candidate(ctx.problem.id)
    best_id, best_speedup = state.get("best_id"), state.get("best_speedup")
    improved = False
    if best and best.candidate_id != best_id:
        new = best.speedup_eager
        gain = ctx.options.min_gain
        improved = (
            best_id is None
            or new is None
            or best_speedup is None
            or (new > best_speedup * (1 + gain))
        )
        best_id, best_speedup = best.candidate_id, new
    stale = 0 if improved else state.get("stale_rounds", 0) + 1
    accepted_now = any(h["accepted"] for h in history if h["round"] == rnd)
    stop = None
    if state.get("halt"):  # the Coder or Judge has nothing more to offer for this problem
        stop = state["halt"]
    elif rnd + 1 >= ctx.options.rounds:
        stop = f"rounds: {ctx.options.rounds} done"
    elif best_id and stale >= ctx.options.plateau_rounds:
        stop = f"plateau: no better kernel in {stale} rounds"
    else:
        stop = ctx.over_budget()
    if stop:
        status = "solved" if best_id else "unsolved"
        ctx.store.finish_problem(ctx.problem.id, status, stop)
        if best_id:
            _promote(ctx)
    return {
        "history": history,
        "best_id": best_id,
        "best_speedup": best_speedup,
        "stale_rounds": stale,
        "round": rnd + 1,
        "stop_reason": stop,
        "mode": "optimize" if accepted_now else "repair",
    }


def _promote(ctx: CampaignContext) -> None:
    """A solved problem offers its winner to the library; the library's own bar decides
    (accepted, GPU-timed, lower bound beats the best PyTorch path; or, with
    ``--allow-untimed``, accepted and labelled untimed)."""
    from ..library.promote import NotPromotable, promote_from_run

    try:
        entry = promote_from_run(
            ctx.store,
            ctx.problem.id,
            problem=ctx.problem,
            allow_untimed=ctx.options.allow_untimed,
        )
    except NotPromotable as exc:
        ctx.store.event("not_promoted", ctx.problem.id, reason=exc.reason)
    else:
        ctx.store.event("promoted", ctx.problem.id, entry=entry.entry_id, tier=entry.tier)


# --- helpers ------------------------------------------------------------------------------------
def _coder(ctx: CampaignContext):
    if ctx.coder_agent is None:
        from .coder import LLMCoder

        ctx.coder_agent = LLMCoder()
    return ctx.coder_agent


def _builtin_seed(ctx: CampaignContext, state: ProblemState, slot: int) -> str:
    """The builtin coder's kernel as one more round-0 candidate, or "" when it has none."""
    from .builtin.coder import BuiltinCoder

    proposed = BuiltinCoder().propose(CoderRequest(ctx, state, None, None, index=0, count=1))
    if proposed.source is None:
        ctx.store.event("seed_skipped", ctx.problem.id, reason=proposed.halt)
        return ""
    return ctx.store.add_candidate(
        ctx.problem.id,
        0,
        slot,
        proposed.source,
        parent_id=None,
        mode="initial",
        builtin_config=proposed.builtin_config,
    )


def _judge(ctx: CampaignContext):
    if ctx.judge_agent is None:
        from .judge import LLMJudge

        ctx.judge_agent = LLMJudge()
    return ctx.judge_agent


def _source(ctx: CampaignContext, candidate_id: str) -> str:
    row = ctx.store.candidate(candidate_id)
    return (ctx.store.path / row.source_path).read_text()


def _round_best(ctx: CampaignContext, ids: list[str]) -> CandidateRow | None:
    rows = [ctx.store.candidate(i) for i in ids]
    ok = [r for r in rows if r and r.accepted]
    if not ok:
        return None
    return max(ok, key=lambda r: (r.speedup_eager or 0.0, -(r.median_ms or 0.0)))


def _first_failure(ctx: CampaignContext, ids: list[str]) -> dict | None:
    for cid in ids:
        row = ctx.store.candidate(cid)
        if row and not row.accepted:
            verdict = ctx.store.verdict_for(cid)
            return {**row.to_dict(), "source": _source(ctx, cid), "verdict": verdict}
    return None
