"""Builtin PReLU (``templates/prelu.py``): a slope per channel or one shared, after a conv as
super-resolution blocks write it, on strided inputs and 1-d to 4-d; accepted by the real
evaluator at a CPU size and a hold-out."""

from __future__ import annotations

import pytest
from builtin_support import assert_accepted, generate, kernel_templates, traced_text

_PROBLEM = """
import torch
import torch.nn as nn

n = 2
c = 8
h = 12
SIZES = {{"cpu": {{"n": 2, "c": 6, "h": 6}}}}
HOLDOUT = [{{"n": 3, "c": 6, "h": 7}}]


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.act = nn.PReLU({params})
        with torch.no_grad():  # slopes of both signs, not PReLU's 0.25 everywhere
            self.act.weight.uniform_(-0.5, 0.5)
        {more}

    def forward(self, x):
        return {expr}


def get_inputs():
    return [torch.randn({shape})]


def get_init_inputs():
    return []
"""


@pytest.mark.parametrize(
    ("params", "expr", "shape", "more"),
    [
        ("c", "self.act(x)", "n, c, h, h", ""),
        ("", "self.act(x)", "n, c, h, h", ""),  # one shared slope
        ("c", "self.act(x.transpose(2, 3))", "n, c, h, h", ""),
        ("c", "self.act(x)", "n, c", ""),
        ("c", "self.act(x)", "n, c, h", ""),
        ("", "self.act(x)", "h", ""),
        ("c", "self.act(self.conv(x))", "n, c, h, h", "self.conv = nn.Conv2d(c, c, 3, padding=1)"),
    ],
)
def test_prelu_is_accepted(tmp_path, params, expr, shape, more):
    text = _PROBLEM.format(params=params, expr=expr, shape=shape, more=more)
    problem, overrides, graph = traced_text(tmp_path, text)
    pl, source = generate(problem, overrides, graph)
    assert pl.ok, pl.describe()
    assert "prelu" in kernel_templates(pl)
    assert_accepted(problem, source)
