"""What the graph's nodes share for one problem: the run store, the LLM clients, the evaluator.

``llm`` is where resume safety lives: every call has an idempotency key (run, problem, round,
role, slot); a call already in the run store is answered from there, so a campaign killed and
resumed never pays twice for the same completion.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

from ..kernelbench.problem import Problem
from ..runs.store import RunStore
from ..sandbox.verdict import Verdict
from .state import CampaignOptions


@dataclasses.dataclass
class Reply:
    text: str | None  # None when the call failed after its retries
    error: str | None
    call_id: str | None


@dataclasses.dataclass
class CampaignContext:
    problem: Problem
    store: RunStore
    options: CampaignOptions
    coder: Any  # agents.llm.LLMClient (or a test double with the same ``complete``)
    judge: Any
    evaluate: Callable[[Problem, str], Verdict]
    gpu_brief: str
    started: float = dataclasses.field(default_factory=time.monotonic)
    # Who writes and who advises: LLM roles by default (coder.LLMCoder, judge.LLMJudge), or the
    # builtin template coder and search judge (agents.builtin).
    coder_agent: Any = None
    judge_agent: Any = None  # a roles.Judge

    @property
    def size(self) -> str:
        """The size the evaluator runs when the campaign names none (``Problem.default_size``)."""
        from ..sandbox.evaluate import cuda_available

        return self.options.size or self.problem.default_size("cuda" if cuda_available() else "cpu")

    @property
    def overrides(self) -> dict:
        return self.problem.overrides_for(self.size, self.options.sets)

    @property
    def coder_source(self) -> str:
        """The problem as the agents see it: at the evaluated size, without hold-out sizes."""
        return self.problem.coder_source(self.overrides)

    def llm(
        self,
        role: str,
        slot: str,
        round_: int,
        messages: list[dict],
        *,
        json_schema: dict | None = None,
    ) -> Reply:
        key = f"{self.problem.id}|r{round_}|{role}|{slot}"
        done = self.store.find_llm_call(key)
        if done and done.ok:
            return Reply(done.text or "", None, done.call.call_id)
        client = self.coder if role == "coder" else self.judge
        from .llm import LLMError

        result, error = None, None
        try:
            result = client.complete(messages, json_schema=json_schema)
        except LLMError as exc:  # retries exhausted: recorded, and the loop goes on
            error = str(exc)
        call_id = self.store.record_llm_call(
            key,
            problem_id=self.problem.id,
            round=round_,
            role=role,
            model=client.config.model,
            messages=messages,
            result=result.to_dict() if result else None,
            error=error,
        )
        return Reply(result.text if result else None, error, call_id)

    def over_budget(self) -> str | None:
        """Why the campaign must stop spending, or None."""
        o = self.options
        spend = self.store.spend()
        if o.budget_usd is not None and spend["usd"] >= o.budget_usd:
            return f"budget: ${spend['usd']:.4f} spent of ${o.budget_usd:.2f}"
        tokens = spend["prompt_tokens"] + spend["completion_tokens"]
        if o.budget_tokens is not None and tokens >= o.budget_tokens:
            return f"budget: {tokens} tokens used of {o.budget_tokens}"
        minutes = (time.monotonic() - self.started) / 60
        if o.budget_minutes is not None and minutes >= o.budget_minutes:
            return f"budget: {minutes:.1f} of {o.budget_minutes:.1f} minutes"
        return None
