"""Builtin pooling of every rank (``templates/pool_nd.py``): max and average pools with padding,
dilation, ceil mode and divisors, adaptive pools, accepted by the real evaluator at a CPU size
and a hold-out; and what the template refuses."""

from __future__ import annotations

import pytest
from builtin_support import assert_accepted, generate, kernel_templates, match_all, traced_text

from kernelloop.agents.builtin.templates.pool_nd import Pool

_PROBLEM = """
import torch
import torch.nn as nn
import torch.nn.functional as F

n = 4
c = 16
l = 64
SIZES = {{"cpu": {{"n": 2, "c": 4, "l": {l}}}}}
HOLDOUT = [{{"n": 3, "c": 3, "l": {holdout}}}]


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.pool = {module}

    def forward(self, x):
        return {expr}


def get_inputs():
    return [torch.randn({shape})]


def get_init_inputs():
    return []
"""


def _problem(tmp_path, expr: str, shape: str, module: str = "None", l: int = 16, holdout=11):
    text = _PROBLEM.format(expr=expr, shape=shape, module=module, l=l, holdout=holdout)
    return traced_text(tmp_path, text)


@pytest.mark.parametrize(
    ("expr", "shape", "module"),
    [
        # 1-d: dilation and ceil mode (the last window starts in the right padding).
        ("F.max_pool1d(x, 3, stride=2, padding=1, dilation=2, ceil_mode=True)", "n, c, l", None),
        # a ceil-mode window runs past the padded input: the divisor is clipped to it
        ("F.avg_pool1d(x, 4, stride=3, padding=2, ceil_mode=True)", "n, c, l", None),
        (
            "self.pool(x)",
            "n, c, l",
            "nn.AvgPool1d(4, 3, 2, ceil_mode=True, count_include_pad=False)",
        ),
        (
            "self.pool(x)",
            "n, c, l, l, 6",
            "nn.MaxPool3d(3, 2, 1, dilation=(1, 2, 1), ceil_mode=True)",
        ),
        (
            "F.avg_pool3d(x, (3, 2, 3), (2, 1, 2), 1, ceil_mode=True, divisor_override=5)",
            "n, c, 6, l, l",
            None,
        ),  # fmt: skip
        ("F.avg_pool3d(x, 3, stride=2, padding=1, count_include_pad=False)", "n, c, l, 7, l", None),
        ("F.max_pool2d(x, 3, 2, 1, ceil_mode=True)", "n, c, l, l", None),
        # adaptive: uneven windows, overlapping ones (output larger than half the input), global
        ("self.pool(x)", "n, c, l, l", "nn.AdaptiveAvgPool2d((3, 5))"),
        ("F.adaptive_max_pool2d(x, (5, 9))", "n, c, l, l", None),
        ("self.pool(x)", "n, c, l, 5, l", "nn.AdaptiveAvgPool3d(1)"),
        # values of a (values, indices) op; an unbatched (C, L) input
        (
            "F.max_pool1d(x, 2, return_indices=True)[0] + F.adaptive_max_pool1d(x, 3).sum()",
            "c, l",
            None,
        ),  # fmt: skip
    ],
)
def test_pools_are_accepted(tmp_path, expr, shape, module):
    problem, overrides, graph = _problem(tmp_path, expr, shape, module or "None")
    pl, source = generate(problem, overrides, graph)
    assert "pool" in kernel_templates(pl), pl.describe()
    assert_accepted(problem, source)


def test_small_tiles_loop_over_window_steps(tmp_path):
    """An 11x11 window (121 taps) at a 64-element tile: two tap steps of a 64-wide tile, and a
    global pool over more taps than a tile holds."""
    expr = "F.avg_pool2d(x, 11, 3, 5) + F.adaptive_avg_pool2d(x, 1)"
    problem, overrides, graph = _problem(tmp_path, expr, "n, c, l, l", l=24, holdout=17)
    pl, source = generate(problem, overrides, graph, {"MAX_BLOCK": 64, "num_warps": 1}, "pool")
    assert kernel_templates(pl)[:2] == ["pool", "pool"], pl.describe()
    assert_accepted(problem, source)


@pytest.mark.parametrize(
    "expr",
    [
        "F.max_pool2d(x, 2, return_indices=True)[1]",  # the indices are used
        "F.adaptive_max_pool2d(x, 3, return_indices=True)",  # both outputs are returned
    ],
)
def test_refused(tmp_path, expr):
    _, _, graph = _problem(tmp_path, expr, "n, c, l, l")
    assert match_all(Pool(), graph) == []


def test_two_dimensional_max_pool_keeps_its_template(tmp_path):
    _, _, graph = _problem(tmp_path, "F.max_pool2d(x, 3, 2, 1)", "n, c, l, l")
    assert [s.template for s in match_all(Pool(), graph)] == ["pool"]
    from kernelloop.agents.builtin import plan

    assert kernel_templates(plan.plan(graph)) == ["maxpool2d"]
