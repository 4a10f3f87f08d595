"""The builtin reduction, softmax and norm templates: what they match (and refuse), and their
generated candidates through the real evaluator at the default and at the smallest blocks (which
force the looped multi-pass paths at the cpu size)."""

from __future__ import annotations

import dataclasses

import pytest
from builtin_support import (
    assert_accepted,
    generate,
    match_all,
    replace_op,
    traced,
    traced_text,
)

from kernelloop.agents.builtin.templates.norm import Norm
from kernelloop.agents.builtin.templates.reduction import Reduction
from kernelloop.agents.builtin.templates.softmax import Softmax
from kernelloop.agents.builtin.trace import Ref

SMALLEST = {"MAX_BLOCK": 256, "BLOCK_I": 16, "num_warps": 1}

_PROBLEM = """
import torch
import torch.nn as nn

a = 16
b = 512
c = 64
SIZES = {{"cpu": {{"a": 4, "b": 300, "c": 20}}}}
HOLDOUT = [{{"a": 3, "b": 37, "c": 5}}]


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(1.0 + 0.5 * torch.randn(c))

    def forward(self, x, y):
        return {expr}


def get_inputs():
    return [torch.randn(a, b, c), torch.randn(a, b, c)]


def get_init_inputs():
    return []
"""


def _load(spec, tmp_path=None):
    if tmp_path is not None:  # a forward expression of x, y and self.weight
        return traced_text(tmp_path, _PROBLEM.format(expr=spec))
    return traced(spec)


def _accepted(problem, overrides, graph, template: str, override: dict | None = None) -> None:
    pl, source = generate(problem, overrides, graph, override, template)
    assert template in [s.template for s in pl.segments], pl.describe()
    assert_accepted(problem, source)


@pytest.mark.parametrize(
    ("problem_id", "template"),
    [
        ("level1/09_sum_dim", "reduction"),
        ("level1/12_argmax_dim", "reduction"),
        ("level1/05_softmax", "softmax"),
        ("level2/05_linear_row_softmax", "softmax"),
        ("level1/07_layernorm", "norm"),
        ("level1/08_rmsnorm", "norm"),
    ],
)
def test_default_candidates_are_accepted(problem_id, template):
    _accepted(*_load(problem_id), template)


@pytest.mark.parametrize(
    ("problem_id", "template"),
    [("level1/11_max_dim", "reduction"), ("level2/06_residual_add_layernorm", "norm")],
)
def test_smallest_blocks_are_accepted(problem_id, template):
    _accepted(*_load(problem_id), template, SMALLEST)


def test_softmax_over_a_middle_dim_with_epilogue_multi_pass(tmp_path):
    loaded = _load("torch.softmax(x, dim=1) * 3.0 + y", tmp_path)
    (seg,) = match_all(Softmax(), loaded[2])
    assert seg.spec["dim"] == 1 and len(seg.ops) == 3 and seg.spec["epilogue"]["operands"] == 1
    _accepted(*loaded, "softmax", SMALLEST)


def test_argmin_over_the_first_dim(tmp_path):
    _accepted(*_load("torch.argmin(x, dim=0)", tmp_path), "reduction")


def test_max_with_indices_claims_both_getitems_and_returns_the_used_one():
    _, _, graph = _load("level1/11_max_dim")
    (seg,) = match_all(Reduction(), graph)
    assert seg.ops == ["max_1", "getitem", "getitem_1"] and seg.output == Ref("getitem")
    both = dataclasses.replace(graph, outputs=[Ref("getitem"), Ref("getitem_1")])
    assert match_all(Reduction(), both) == []


def test_reduction_refuses_non_contiguous_dims_and_dtype_casts():
    _, _, graph = _load("level1/09_sum_dim")
    x = Ref("x")
    assert match_all(Reduction(), replace_op(graph, "sum_1", args=(x, (0, 2), True))) == []
    cast = replace_op(graph, "sum_1", kwargs={"dtype": "float64"})
    assert match_all(Reduction(), cast) == []
    (seg,) = match_all(Reduction(), replace_op(graph, "sum_1", args=(x, (1, 2), False)))
    assert (seg.spec["lo"], seg.spec["hi"]) == (1, 3)


def test_softmax_reads_the_linear_output():
    _, _, graph = _load("level2/05_linear_row_softmax")
    (seg,) = match_all(Softmax(), graph)
    assert seg.inputs == [Ref("linear")] and seg.spec["dim"] == 1


@pytest.mark.parametrize(
    "expr",
    [
        "self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5))",
        "x * (torch.rsqrt((x * x).mean(-1, keepdim=True) + 1e-5) * self.weight)",
    ],
)
def test_rmsnorm_variants_are_one_segment(tmp_path, expr):
    _, _, graph = _load(expr, tmp_path)
    (seg,) = match_all(Norm(), graph)
    assert seg.spec["kind"] == "rms" and seg.spec["weight"] and len(seg.ops) == len(graph.ops)


@pytest.mark.parametrize(
    "expr",
    [
        # the inverse RMS of x scales a different tensor
        "y * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5)",
        # mean over a non-last dim
        "x * torch.rsqrt(x.pow(2).mean(1, keepdim=True) + 1e-5)",
        # the mean of squares is also returned
        "(x * torch.rsqrt((m := x.pow(2).mean(-1, keepdim=True)) + 1e-5), m)",
    ],
)
def test_norm_refuses_broken_rms_patterns(tmp_path, expr):
    _, _, graph = _load(expr, tmp_path)
    assert match_all(Norm(), graph) == []


def test_rmsnorm_swiglu_norm_stops_before_the_two_linears():
    _, _, graph = _load("level2/07_rmsnorm_swiglu")
    (seg,) = match_all(Norm(), graph)
    assert seg.ops == ["pow_1", "mean", "add", "rsqrt", "mul", "mul_1"]
    assert seg.output == Ref("mul_1")
