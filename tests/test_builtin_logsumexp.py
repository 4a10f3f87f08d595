"""logsumexp as a reduction: one pass per lane with a running max, over any span of dims."""

from __future__ import annotations

import pytest
from builtin_support import assert_accepted, generate, kernel_templates, traced_text

_PROBLEM = """
import torch
import torch.nn as nn

batch_size = 6
features = 40
cols = 24
SIZES = {{"cpu": {{"batch_size": 6, "features": 40, "cols": 24}}}}
HOLDOUT = [{{"batch_size": 5, "features": 37, "cols": 13}}]


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        return {expr}


def get_inputs():
    return [torch.randn(batch_size, features, cols) * 30]


def get_init_inputs():
    return []
"""


@pytest.mark.parametrize(
    "expr",
    [
        "torch.nn.functional.leaky_relu(torch.logsumexp(x, dim=1, keepdim=True), 0.01)",
        "torch.logsumexp(x, dim=(1, 2))",  # inputs scaled by 30: exp alone would overflow
    ],
)
def test_logsumexp_is_accepted(tmp_path, expr):
    problem, overrides, graph = traced_text(tmp_path, _PROBLEM.format(expr=expr))
    pl, source = generate(problem, overrides, graph)
    assert "reduction" in kernel_templates(pl), pl.describe()
    assert_accepted(problem, source)
