"""Size constants of captured problems: one per group of dimensions the export ties together.

A constant per dimension *value* merged unrelated sizes that happen to be equal (no hold-out could
change one alone); constants finer than the reference allows build inputs it rejects, and
autosize must drop those.
"""

from __future__ import annotations

import textwrap

import torch

from kernelloop.capture import capture
from kernelloop.kernelbench import autosize, hygiene, loader

SIZE_MODELS = """
import torch
import torch.nn as nn


class Mix(nn.Module):  # x: (batch, 16 tokens, 16 features): equal by chance, unrelated
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(16, 24)

    def forward(self, x):
        return torch.tanh(self.lin(x))


class Project(nn.Module):  # x @ w: w's rows must equal x's last dim; its columns need not
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(32, 32) / 6)

    def forward(self, x):
        return torch.relu(x @ self.w)


def make_mix():
    torch.manual_seed(0)
    return Mix().eval()


def mix_inputs():
    return [torch.randn(3, 16, 16)]


def make_project():
    torch.manual_seed(0)
    return Project().eval()


def project_inputs():
    return [torch.randn(3, 32)]
"""


def _captured(tmp_path, factory):
    path = tmp_path / "size_models.py"
    path.write_text(textwrap.dedent(SIZE_MODELS))
    inputs = f"{path}:{factory.replace('make_', '')}_inputs"
    result = capture(f"{path}:{factory}", inputs=inputs, out_dir=tmp_path / factory)
    (sub,) = result.subgraphs
    return loader.load(tmp_path / factory / sub.file)[0]


def test_equal_but_unrelated_dims_get_constants_of_their_own(tmp_path):
    problem = _captured(tmp_path, "make_mix")
    # One constant per value ("DIM_16" for both) left no size a hold-out could change alone.
    assert problem.constants["SEQ"] == 16 and "torch.randn(BATCH, SEQ, DIM_16)" in problem.source
    assert "torch.randn(DIM_24, DIM_16)" in problem.source  # in-features follow x's, by symbol
    report = hygiene.check(problem)
    failed = {k: c.detail for k, c in report.checks.items() if not c.passed}
    assert not failed, failed
    assert report.checks["has_holdout"].passed
    variants = autosize.holdouts(problem, {}, seed=3)
    assert any(v["SEQ"] != v["DIM_16"] for v in variants), variants  # they vary apart


def test_dims_that_must_be_equal_share_a_constant_and_hold_outs_run(tmp_path):
    problem = _captured(tmp_path, "make_project")
    # w's rows meet x's last dim: one constant. Its columns are free: the same value, another one.
    assert "x = torch.randn(BATCH, DIM_32)" in problem.source
    assert "w = torch.randn(DIM_32, DIM_32_2)" in problem.source
    variants = autosize.holdouts(problem, {}, seed=1)
    assert variants
    for sizes in variants:
        module = problem.instantiate(sizes)
        with torch.no_grad():
            out = module.Model()(*module.get_inputs())
        assert out.shape == (sizes.get("BATCH", 3), sizes.get("DIM_32_2", 32))


TIED_BY_HAND = """
import torch
import torch.nn as nn

BATCH = 24
HIDDEN = 48
ROWS = 48  # must equal HIDDEN: a file whose constants are finer than its reference allows


class Model(nn.Module):
    def forward(self, x, w):
        return x @ w


def get_inputs():
    return [torch.randn(BATCH, HIDDEN), torch.randn(ROWS, 40)]


def get_init_inputs():
    return []
"""


def test_hold_outs_that_break_the_reference_are_dropped(tmp_path):
    # Export's equalities can be weaker than the model needs; autosize probes each variant on
    # the meta device, so one that changes ROWS without HIDDEN is never handed out.
    path = tmp_path / "tied.py"
    path.write_text(TIED_BY_HAND)
    problem = loader.load(path)[0]
    variants = [v for seed in range(4) for v in autosize.holdouts(problem, {}, seed=seed)]
    assert variants
    for sizes in variants:
        assert sizes["HIDDEN"] == sizes["ROWS"], sizes
        module = problem.instantiate(sizes)
        module.Model()(*module.get_inputs())
