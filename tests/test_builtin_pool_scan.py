"""Builtin max-pool and cumulative-sum templates: accepted candidates and what they refuse."""

from __future__ import annotations

import pytest
from builtin_support import (
    assert_accepted,
    generate,
    kernel_templates,
    match_all,
    traced,
    traced_text,
)

from kernelloop.agents.builtin.templates.pool import MaxPool2d

_PROBLEM = """
import torch
import torch.nn as nn
import torch.nn.functional as F

a = 6
b = 40
c = 24
SIZES = {{"cpu": {{"a": 2, "b": 40, "c": 8}}}}
HOLDOUT = [{{"a": 2, "b": 37, "c": 5}}]


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        return {expr}


def get_inputs():
    return [torch.randn(a, b, c, c)]


def get_init_inputs():
    return []
"""


def _problem(tmp_path, expr: str):
    return traced_text(tmp_path, _PROBLEM.format(expr=expr))


@pytest.mark.parametrize(
    "problem_id,templates,override",
    [
        ("level1/19_maxpool2d", ["maxpool2d"], None),
        ("level1/19_maxpool2d", ["maxpool2d"], {"BLOCK": 64, "num_warps": 1}),
        (
            "level3/04_small_cnn",
            ["conv2d", "maxpool2d", "conv2d", "maxpool2d", "conv2d", "reduction", "matmul"],
            None,
        ),  # fmt: skip
        ("level1/13_cumsum", ["cumsum"], None),
        # 256-element tiles over 1000-long rows: the carry between tiles is exercised.
        ("level1/13_cumsum", ["cumsum"], {"MAX_BLOCK": 256, "num_warps": 1}),
    ],
)
def test_candidates_are_accepted(problem_id, templates, override):
    problem, overrides, graph = traced(problem_id)
    pl, source = generate(problem, overrides, graph, override)
    assert kernel_templates(pl) == templates, pl.describe()
    assert_accepted(problem, source)


def test_cumsum_over_a_middle_dim_and_dilated_pooling(tmp_path):
    problem, overrides, graph = _problem(tmp_path, "torch.cumsum(x, dim=1)")
    pl, source = generate(
        problem, overrides, graph, {"MAX_BLOCK": 256, "BLOCK_I": 16}
    )  # 16 rows a tile
    assert kernel_templates(pl) == ["cumsum"]
    assert_accepted(problem, source)
    expr = "F.max_pool2d(x, 3, stride=(1, 2), padding=1, dilation=2)"
    problem, overrides, graph = _problem(tmp_path, expr)
    pl, source = generate(problem, overrides, graph)
    assert kernel_templates(pl) == ["maxpool2d"]
    assert_accepted(problem, source)


def test_ceil_mode_pooling_is_refused(tmp_path):
    _, _, graph = _problem(tmp_path, "F.max_pool2d(x, 3, stride=2, ceil_mode=True)")
    assert match_all(MaxPool2d(), graph) == []
