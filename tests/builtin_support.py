"""What the builtin-coder tests share: trace a problem at its CPU size, write its candidate with
chosen configs, run it through the real evaluator, and poke at op graphs."""

from __future__ import annotations

import dataclasses

from kernelloop.agents.builtin import module, plan, trace
from kernelloop.agents.builtin.templates import BY_NAME
from kernelloop.kernelbench import loader
from kernelloop.sandbox.evaluate import evaluate


def traced(spec):
    """(problem, its CPU-size overrides, its op graph) for a problem id or file."""
    (problem,) = loader.load(spec)
    overrides = problem.overrides_for("cpu")
    return problem, overrides, trace.trace(problem, overrides)


def traced_text(tmp_path, text: str):
    """``traced`` for a problem given as source text (written to ``tmp_path/problem.py``)."""
    path = tmp_path / "problem.py"
    path.write_text(text)
    return traced(path)


def generate(problem, overrides, graph, override: dict | None = None, template: str | None = None):
    """The plan and candidate source: default configs, with ``override``'s knobs applied to the
    segments of ``template`` (every kernel segment when None)."""
    pl = plan.plan(graph)
    configs = []
    for s in pl.segments:
        t = BY_NAME[s.template]
        config = t.default(s)
        if override and s.template != "layout" and template in (None, s.template):
            config.update({k: v for k, v in override.items() if k in t.knobs})
        configs.append(config)
    return pl, module.generate(problem, graph, pl, configs, overrides)


def assert_accepted(problem, source: str) -> None:
    verdict = evaluate(problem, source, size="cpu")
    assert verdict.accepted, (verdict.codes, [r.message for r in verdict.reasons][:2])


def kernel_templates(pl) -> list[str]:
    return [s.template for s in pl.segments if s.template != "layout"]


def match_all(template, graph):
    """Every segment ``template`` matches, trying each op as the anchor."""
    found = [template.match(graph, i, set()) for i in range(len(graph.ops))]
    return [s for s in found if s is not None]


def replace_op(graph, name: str, **changes):
    ops = [dataclasses.replace(o, **changes) if o.name == name else o for o in graph.ops]
    return dataclasses.replace(graph, ops=ops)


def builtin_campaign(problems, runs_dir, *, rounds: int, evaluate=None, size: str | None = "cpu"):
    """A finished builtin-coder campaign over ``problems`` at their CPU sizes, one candidate a
    round (``evaluate``: the campaign's evaluator, the real one by default); its run store."""
    from kernelloop.agents import campaign
    from kernelloop.agents.state import CampaignOptions

    options = CampaignOptions(rounds=rounds, candidates=1, size=size)
    store = campaign.open_store(problems, coder_model="builtin", judge_model="builtin",
                                options=options, base_url=None, runs_dir=runs_dir,
                                resume=None)  # fmt: skip
    campaign.run(store, problems, coder_model="builtin", judge_model="builtin", options=options,
                 evaluate=evaluate)  # fmt: skip
    return store
