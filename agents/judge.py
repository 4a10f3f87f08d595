"""The Judge: one concrete next step, from the failure (repair) or the measurements (optimize).

Replies are JSON validated against a schema; a malformed reply is retried once with the
validation error shown, then recorded as a failed judgement that the loop survives (the Coder
then works without advice).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import prompts
from .coder import describe_timing, failure_text, history_table
from .context import CampaignContext, Reply
from .extract import OPTIMIZE_SCHEMA as OPTIMIZE
from .extract import REPAIR_SCHEMA as REPAIR
from .extract import ExtractionError, extract_json
from .roles import Judgement, JudgeRequest

if TYPE_CHECKING:
    from ..runs.rows import CandidateRow

SYSTEM = (
    "You are a GPU performance engineer reviewing a kernel. Name exactly one concrete next step. "
    "Reply with a single JSON object matching the requested fields, nothing else."
)


class LLMJudge:
    """The Judge as a model: repair reads the failure, optimize reads the measurements."""

    name = "llm"
    reads_untimed_resources = True

    def advise(self, request: JudgeRequest) -> Judgement:
        ctx, state, mode = request.ctx, request.state, request.mode
        if mode == "repair":
            prompt = repair_messages(ctx, request.failing, state.get("no_code", 0))
            judgement = ask(ctx, mode, state["round"], prompt, REPAIR)
        else:
            profile, history = state.get("profile"), state["history"]
            prompt = optimize_messages(ctx, request.best_round, profile, history)
            judgement = ask(ctx, mode, state["round"], prompt, OPTIMIZE)
        # "halt" ends a problem in the graph; a model's reply may not decide that.
        judgement.advice.pop("halt", None)
        return judgement


def repair_messages(ctx: CampaignContext, failing: dict | None, no_code: int) -> list[dict]:
    if failing is None:
        error = f"{no_code} replies contained no complete ```python block defining ModelNew"
        source = "(no code)"
    else:
        error, source = failure_text(failing), failing["source"]
    user = prompts.render(
        "judge-repair",
        problem_source=ctx.coder_source,
        source=source,
        error=error,  # failure_text caps and fences what the candidate wrote
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def optimize_messages(
    ctx: CampaignContext, row: CandidateRow, profile: str | None, history: list
) -> list[dict]:
    source = (ctx.store.path / row.source_path).read_text()
    user = prompts.render(
        "judge-optimize",
        problem_source=ctx.coder_source,
        source=source,
        timing=describe_timing(row),
        profile=profile or "(no hardware profile available)",
        gpu=ctx.gpu_brief,
        history=history_table(history),
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def ask(
    ctx: CampaignContext, mode: str, round_: int, messages: list[dict], schema: dict
) -> Judgement:
    """The Judge's advice and the id of the call that produced it (or a recorded failure)."""
    reply = ctx.llm("judge", mode, round_, messages, json_schema=schema)
    advice, problem = _parse(reply, schema)
    if problem and reply.text is not None:  # malformed: one retry that shows what was wrong
        retry = [
            *messages,
            {"role": "assistant", "content": reply.text},
            {
                "role": "user",
                "content": f"That reply was not valid: {problem}. Reply with the JSON object only.",
            },
        ]
        reply = ctx.llm("judge", f"{mode}-retry", round_, retry, json_schema=schema)
        advice, problem = _parse(reply, schema)
    if problem:
        ctx.store.event("judge_failed", ctx.problem.id, round=round_, error=problem)
        advice = {"error": problem}
    return Judgement(advice, reply.call_id)


def _parse(reply: Reply, schema: dict) -> tuple[dict[str, Any], str | None]:
    if reply.text is None:
        return {}, f"judge call failed: {reply.error}"
    try:
        return extract_json(reply.text, schema), None
    except ExtractionError as exc:
        return {}, f"malformed judge reply: {exc}"


__all__ = ["OPTIMIZE", "REPAIR", "LLMJudge", "ask", "optimize_messages", "repair_messages"]
