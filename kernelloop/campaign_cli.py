"""``kernelloop optimize``'s terminal side: live progress per problem and the final summary."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table


class _Board:
    """Per problem: round, what is happening, best speedup, spend."""

    def __init__(self, problem_ids: list[str], store):
        self.rows = {p: {"round": 0, "status": "waiting", "best": "-"} for p in problem_ids}
        self.store = store
        self.started = time.monotonic()

    def update(self, problem_id: str, node: str, values: dict[str, Any]) -> None:
        row = self.rows[problem_id]
        if "round" in values:
            row["round"] = values["round"]
        row["status"] = {
            "baseline": "started",
            "propose": "coder",
            "evaluate": "evaluating",
            "profile": "profiling",
            "judge": "judge",
            "decide": "next round",
        }.get(node, node)
        if values.get("stop_reason"):
            reason = values["stop_reason"]
            row["status"] = "done (" + (reason if len(reason) <= 48 else reason[:47] + "…") + ")"
        best = self.store.best_candidate(problem_id)
        if best:
            s = best.speedup_eager
            row["best"] = f"{s:.2f}x" if s else "correct (untimed)"

    def table(self) -> Table:
        t = Table(title=f"campaign {self.store.run_id}  ({time.monotonic() - self.started:.0f} s)")
        for col in ("problem", "round", "status", "best", "USD"):
            t.add_column(col)
        for pid, row in self.rows.items():
            usd = self.store.spend(pid)
            cost = f"{usd['usd']:.4f}" + ("+?" if usd["usd_unknown_calls"] else "")
            t.add_row(pid, str(row["round"]), row["status"], row["best"], cost)
        return t


BUDGETS = ("budget_minutes", "budget_usd", "budget_tokens")


def summary_table(summary: dict[str, Any]) -> Table:
    # Compact enough for an 80-column log: the best kernel's id is in `runs show`.
    t = Table(title="summary (speedup of the best kernel vs eager PyTorch and torch.compile)")
    t.add_column("problem", no_wrap=True, max_width=20)
    for col in ("status", "cands", "ok", "eager", "compile", "USD", "min"):
        t.add_column(col, no_wrap=True)
    for p in summary.get("problems", []):
        best = p.get("best") or {}

        def fmt(key: str, best=best) -> str:
            v = best.get(key)
            if isinstance(v, dict):  # the store keeps {point, low, high}
                v = v.get("point")
            return f"{v:.2f}x" if isinstance(v, int | float) else "-"

        spend = p.get("spend", {})
        usd = spend.get("usd", 0.0)
        cost = f"{usd:.4f}" + ("+?" if spend.get("usd_unknown_calls") else "")
        minutes = p.get("minutes")
        t.add_row(
            p["problem_id"],
            str(p.get("status")),
            str(p.get("candidates", 0)),
            str(p.get("accepted", 0)),
            fmt("speedup_eager"),
            fmt("speedup_compile"),
            cost,
            f"{minutes:.1f}" if minutes is not None else "-",
        )
    return t


def run_optimize(
    console: Console,
    *,
    problems: list[str],
    coder: str | None,
    judge: str | None,
    base_url: str | None,
    options,
    run_dir: Path,
    resume: str | None,
    fail,
) -> int:
    """Run (or resume) a campaign with live progress; returns the exit status."""
    from .agents import campaign
    from .agents.llm import LLMError
    from .agents.state import CampaignOptions
    from .kernelbench import loader
    from .kernelbench.problem import ProblemError
    from .runs.store import RunStore, RunStoreError

    if resume:  # the stored configuration wins: a resumed run is the same campaign
        try:
            stored = RunStore.open(run_dir / resume).config()
        except RunStoreError as exc:
            raise fail(str(exc)) from None
        problems, coder, judge = stored["problems"], stored["coder"], stored["judge"]
        base_url = base_url or stored.get("base_url")
        # ...except budgets given now: they are this sitting's allowance, not the campaign's
        given = {k: getattr(options, k) for k in BUDGETS if getattr(options, k) is not None}
        options = CampaignOptions(**{**stored["options"], **given})
    skipped: list = []
    try:
        found = [p for spec in problems for p in loader.load(spec, skipped)]
    except ProblemError as exc:
        raise fail(str(exc)) from None
    for path, why in skipped:  # one foreign file that is no problem does not stop the rest
        console.print(f"[yellow]skipped {path.name}[/yellow]: {escape(why)}")

    store = campaign.open_store(
        found,
        coder_model=coder,
        judge_model=judge,
        options=options,
        base_url=base_url,
        runs_dir=run_dir,
        resume=resume,
    )
    board = _Board([p.id for p in found], store)
    console.print(f"run {store.run_id} in {store.path}")
    where = f" --run-dir {run_dir}"  # the hints below must find this run again
    try:
        with Live(board.table(), console=console, refresh_per_second=4) as live:

            def progress(problem_id: str, node: str, values: dict) -> None:
                board.update(problem_id, node, values)
                live.update(board.table())

            campaign.run(
                store,
                found,
                coder_model=coder,
                judge_model=judge,
                options=options,
                base_url=base_url,
                progress=progress,
            )
    except LLMError as exc:
        console.print(f"[red]LLM error:[/red] {exc}")
        console.print(f"fix it, then: kernelloop optimize --resume {store.run_id}{where}")
        return 2
    except KeyboardInterrupt:
        console.print(f"interrupted; continue: kernelloop optimize --resume {store.run_id}{where}")
        return 130
    summary = store.summary()
    console.print(summary_table(summary))
    correct, fast_1 = summary.get("correct_pct"), summary.get("fast_1")
    console.print(
        f"correct {_num(correct, '{:.0f}%')}, fast_1 {_num(fast_1, '{:.2f}')}, "
        f"geomean speedup vs eager {_fmt(summary.get('geomean_speedup_eager'))}, "
        f"vs compile {_fmt(summary.get('geomean_speedup_compile'))}"
    )
    rate, options_used = summary.get("candidates_per_minute"), summary["config"]["options"]
    console.print(
        f"throughput {_num(rate, '{:.1f}')} candidates/min ({summary.get('evaluated', 0)} "
        f"evaluated in {summary.get('minutes') or 0:.1f} min, "
        f"executor {options_used.get('executor', 'local')})"
    )
    console.print(f"details: kernelloop runs show {store.run_id}{where}")
    console.print(f"review: kernelloop dashboard{where}")
    waiting = [p for p in summary["problems"] if p.get("status") == "interrupted"]
    if waiting:
        console.print(
            f"{len(waiting)} problem(s) got no round within the budget; continue: "
            f"kernelloop optimize --resume {store.run_id}{where} --budget-minutes N"
        )
    return 0


def _num(value, pattern: str) -> str:
    return pattern.format(value) if isinstance(value, int | float) else "n/a"


def _fmt(value) -> str:
    return f"{value:.2f}x" if isinstance(value, int | float) else "n/a (no GPU timings)"
