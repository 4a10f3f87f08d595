"""A campaign: the graph run over each problem, with a run store and a resumable checkpoint.

``run`` is what ``kernelloop optimize`` calls. Evaluations go to an executor
(``sandbox/executors``: a local queue per GPU, or Ray tasks); problems run one after another, or
side by side when the executor evaluates several candidates at once. Each problem is one
LangGraph thread in ``<run>/checkpoints.sqlite``; ``--resume RUN_ID`` reopens the run, skips
finished problems and continues unfinished ones from their last completed node. Completed LLM
calls and evaluations are answered from the run store, so nothing paid for is repeated.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .. import settings as settings_mod
from ..kernelbench.problem import Problem
from ..runs.store import RunStore
from .context import CampaignContext
from .state import CampaignOptions

Progress = Callable[[str, str, dict[str, Any]], None]  # (problem_id, node, state update)


def _clients(coder_model: str, judge_model: str, base_url: str | None, options: CampaignOptions):
    from .llm import LLMClient, LLMConfig
    from .pricing import PriceTable

    cfg = settings_mod.get()
    prices = PriceTable.load(cfg.prices_path)

    def client(model: str):
        config = LLMConfig(
            model=model,
            base_url=base_url or cfg.base_url,
            api_key=cfg.api_key,
            temperature=options.temperature,
            reasoning_effort=options.reasoning_effort,
            timeout_s=cfg.llm_timeout_s,
            max_retries=cfg.llm_retries,
        )
        return LLMClient(config, prices)

    return client(coder_model), client(judge_model)


def _gpu_brief() -> str:
    from . import prompts

    spec = None
    try:
        import torch

        if torch.cuda.is_available():
            from ..feedback import gpu_specs

            spec = gpu_specs.current()
    except ImportError:
        pass
    return prompts.gpu_brief(spec)


def _default_evaluate(options: CampaignOptions):
    """The campaign's executor (sandbox/executors): it evaluates one candidate when called and
    takes a whole round at once through ``submit``."""
    from ..sandbox import executors

    spec = executors.EvalSpec(size=options.size, sets=options.sets, sandbox=options.sandbox)
    return executors.make(options.executor, spec, ray_address=options.ray_address)


def _finished(store: RunStore, problem_id: str) -> bool:
    """The run store, not the checkpoint, says whether a problem is done: its status is
    written by the decide node only when the problem stops."""
    return any(
        p.problem_id == problem_id and p.status in ("solved", "unsolved") for p in store.problems()
    )


def open_store(
    problems: list[Problem],
    *,
    coder_model: str,
    judge_model: str,
    options: CampaignOptions,
    base_url: str | None,
    runs_dir: Path,
    resume: str | None,
) -> RunStore:
    """The run to write into: a new one, or the one being resumed."""
    if resume:
        return RunStore.open(runs_dir / resume)
    config = {
        "problems": [p.id for p in problems],
        "coder": coder_model,
        "judge": judge_model,
        "base_url": base_url,
        "options": options.to_dict(),
    }
    return RunStore.create(runs_dir, config)


def run(
    store: RunStore,
    problems: list[Problem],
    *,
    coder_model: str,
    judge_model: str,
    options: CampaignOptions,
    base_url: str | None = None,
    evaluate: Callable | None = None,
    progress: Progress | None = None,
    clients: tuple[Any, Any] | None = None,
) -> RunStore:
    from langgraph.checkpoint.sqlite import SqliteSaver

    from . import graph

    coder_agent = judge_agent = None
    if coder_model == "builtin":  # templates + search: no LLM client, no API key
        from .builtin.coder import BuiltinCoder
        from .builtin.judge import BuiltinJudge

        coder, judge = None, None
        coder_agent = BuiltinCoder()
        judge_agent = BuiltinJudge(coder_agent)
    else:
        coder, judge = clients or _clients(coder_model, judge_model, base_url, options)
    owned = evaluate is None  # an executor made here is closed here
    evaluate = evaluate or _default_evaluate(options)
    brief = _gpu_brief()
    conn = sqlite3.connect(store.path / "checkpoints.sqlite", check_same_thread=False)
    saver = SqliteSaver(conn)
    store.set_status("running")
    started = time.monotonic()  # --budget-minutes is for the whole campaign, not per problem

    def one(problem: Problem) -> None:
        ctx = CampaignContext(
            problem=problem,
            store=store,
            options=options,
            coder=coder,
            judge=judge,
            evaluate=evaluate,
            gpu_brief=brief,
            coder_agent=coder_agent,
            judge_agent=judge_agent,
            started=started,
        )
        app = graph.build(ctx, checkpointer=saver)
        cfg = {
            "configurable": {"thread_id": problem.id},
            "recursion_limit": 8 * options.rounds + 16,
        }
        if _finished(store, problem.id):
            return  # finished before the interruption
        snapshot = app.get_state(cfg)
        start = None if snapshot.next else {"problem_id": problem.id}
        # durability="sync": each step's checkpoint is on disk before the next step starts,
        # so a kill -9 loses at most the step in flight (its LLM calls and evaluations are
        # answered again from the run store, not paid for twice).
        for update in app.stream(start, cfg, stream_mode="updates", durability="sync"):
            for node, values in update.items():
                if progress:
                    progress(problem.id, node, values or {})

    # Problems run side by side when the executor evaluates several candidates at once (the GPUs
    # of a Ray cluster, several local GPUs): each problem's graph runs in a driver thread; the run
    # store and the checkpointer stay here, shared (both are thread-safe, and so is the builtin
    # coder's per-problem plan cache).
    width = min(len(problems), getattr(evaluate, "parallelism", 1))
    try:
        if width <= 1:
            for problem in problems:
                one(problem)
        else:
            with ThreadPoolExecutor(width, thread_name_prefix="kernelloop-problem") as pool:
                for future in [pool.submit(one, p) for p in problems]:
                    future.result()  # the first failure propagates, once the others end
        store.set_status("finished")
    except BaseException:
        store.set_status("interrupted")
        raise
    finally:
        conn.close()
        if owned:
            evaluate.close()
    return store
