"""Problem files as others write them, through the builtin coder and the evaluator: helper
classes and functions at module level, type hints, keyword-only init arguments, integer and
boolean inputs, several outputs, no kernelloop declarations (a derived size and hold-outs)."""

from __future__ import annotations

from builtin_support import builtin_campaign, generate
from paths import TESTS

from kernelloop.agents.builtin import trace
from kernelloop.kernelbench import loader

FOREIGN = TESTS / "fixtures" / "foreign"


def test_helper_classes_the_init_builds_with_are_copied_without_their_forward():
    (problem,) = loader.load(FOREIGN / "helper_block.py")
    overrides = problem.overrides_for(problem.default_size("cpu"))
    pl, source = generate(problem, overrides, trace.trace(problem, overrides))
    assert pl.ok, pl.describe()
    assert "class Block(nn.Module):" in source and "def hidden_for(dim: int)" in source
    assert source.count("def forward") == 1  # ModelNew's; the helper computes nothing


def test_a_foreign_file_is_verified_at_its_derived_size(tmp_path):
    problems = loader.load(FOREIGN / "helper_block.py")
    store = builtin_campaign(problems, tmp_path, rounds=1, size=None)  # as the CLI: no --size
    (row,) = store.summary()["problems"]
    assert row["status"] == "solved", row["stop_reason"]
    (cand,) = store.candidates(problems[0].id)
    verdict = store.verdict_for(cand.candidate_id)
    assert verdict.size == "auto" and {"holdout1", "holdout2"} <= set(verdict.sizes)


ALIASES = """
import torch
import torch.nn as nn

SIZES = {"cpu": {"n": 64}}
HOLDOUT = [{"n": 37}]
n = 64


class Model(nn.Module):
    def forward(self, x, y):
        z = torch.multiply(torch.subtract(x, y), torch.divide(x, 3.0))
        return torch.clip(torch.true_divide(z, 2.0), -1.0, 1.0)


def get_inputs():
    return [torch.randn(n, 8), torch.randn(n, 8)]


def get_init_inputs():
    return []
"""


def test_aten_alias_ops_are_known_by_their_canonical_names(tmp_path):
    from builtin_support import assert_accepted, traced_text

    problem, overrides, graph = traced_text(tmp_path, ALIASES)
    assert {o.op for o in graph.ops} == {"mul", "sub", "div", "clamp"}
    pl, source = generate(problem, overrides, graph)
    assert pl.ok, pl.describe()
    assert_accepted(problem, source)
