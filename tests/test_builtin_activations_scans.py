"""Builtin coder: the activation vocabulary of KernelBench level 1 and the scan family
(cumprod, reversed, exclusive and masked cumulative sums), accepted by the real evaluator."""

from __future__ import annotations

import pytest
from builtin_support import assert_accepted, generate, kernel_templates, traced_text

_ACTIVATIONS = """
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

rows = 64
cols = 512
SIZES = {{"cpu": {{"rows": 8, "cols": 96}}}}
HOLDOUT = [{{"rows": 3, "cols": 37}}]


class Model(nn.Module):
    def __init__(self, alpha=0.7, floor=-0.25):
        super().__init__()
        self.alpha = alpha
        self.floor = floor

    def forward(self, x):
        return ({body},)


def get_inputs():
    return [torch.randn(rows, cols) * 3]


def get_init_inputs():
    return [0.7, -0.25]
"""

# Every output is its own elementwise kernel: one evaluation checks them all.
_UNARY = [
    "torch.selu(x)",
    "F.elu(x, alpha=self.alpha)",
    "F.celu(x, alpha=0.5)",
    "F.hardtanh(x, min_val=-0.5, max_val=2.0)",
    "F.softplus(x, beta=2.0, threshold=3.0)",
    "F.softplus(x)",
    "F.softsign(x)",
    "F.hardsigmoid(x)",
    "F.hardswish(x)",
    "F.mish(x)",
    "F.logsigmoid(x)",
    "F.gelu(x, approximate='tanh')",
    "F.hardshrink(x, 0.6) + F.softshrink(x, 0.4)",
    "F.threshold(x, 0.1, -2.0)",
    "torch.sign(x) * torch.expm1(x.clamp(max=3)) + torch.log1p(x.abs())",
    "torch.sin(x) + torch.cos(x) + torch.trunc(x)",
    "x.abs().pow(2.5) + x.pow(-2) + torch.pow(2.0, x.clamp(max=4))",
]
_SCALARS = [
    # MinGPT's new GELU, written out (level 1 #88).
    "0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))",
    "torch.clamp(x, -0.5, 0.5)",
    "torch.clamp(x, min=0.1)",
    "torch.clamp(x, max=self.floor)",
    "torch.clamp_min(x, 0.1) + torch.clamp_max(x, 0.3)",
    # level-2 style: a 0-d tensor made in forward, on the input's device or the CPU
    "torch.min(x, torch.tensor(0.2, device=x.device))",
    "torch.max(x, torch.tensor(self.floor))",
]


@pytest.mark.parametrize("body", [_UNARY, _SCALARS], ids=["unary", "scalars"])
def test_activations_are_accepted(tmp_path, body):
    problem, overrides, graph = traced_text(tmp_path, _ACTIVATIONS.format(body=", ".join(body)))
    pl, source = generate(problem, overrides, graph)
    # one kernel an output, branches joined included (new GELU's 0.5 * x waits for the tanh)
    assert kernel_templates(pl) == ["elementwise"] * len(body), pl.describe()
    assert_accepted(problem, source)


_SCANS = """
import torch
import torch.nn as nn

a = 4
b = 64
c = 16
SIZES = {{"cpu": {cpu}}}
HOLDOUT = [{holdout}]


class Model(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dim = dim

    def forward(self, x, mask):
        d = self.dim
        head = torch.cumsum(x.narrow(dim=d, start=0, length=x.size(d) - 1), dim=d)
        zero = torch.zeros_like(x.select(d, 0).unsqueeze(d))
        return (
            torch.cumprod(x, dim=d),
            torch.cumsum(x.flip(d), dim=d).flip(d),
            torch.cat((zero, head), dim=d),
            torch.cumsum(x * mask, dim=d),
            torch.cumprod(x.flip(d), dim=d).flip(d),
        )


def get_inputs():
    # near 1, so that products neither vanish nor overflow over 40 steps
    x = torch.rand(a, b, c) * 0.2 + 0.9
    return [x, torch.rand(a, b, c) > 0.5]


def get_init_inputs():
    return [{dim}]
"""


@pytest.mark.parametrize(
    ("dim", "cpu", "holdout", "override"),
    [
        # a middle dim, 8 columns a program: 32-row tiles over rows of 40, so the carry between
        # tiles is exercised
        (
            1,
            {"a": 2, "b": 40, "c": 6},
            {"a": 1, "b": 21, "c": 3},
            {"MAX_BLOCK": 256, "BLOCK_I": 16},
        ),
        # the last dim, one row a program, 16-element tiles over rows of 40
        (-1, {"a": 1, "b": 4, "c": 40}, {"a": 1, "b": 3, "c": 21}, {"MAX_BLOCK": 16}),
    ],
)
def test_scan_forms_are_accepted(tmp_path, dim, cpu, holdout, override):
    text = _SCANS.format(dim=dim, cpu=cpu, holdout=holdout)
    problem, overrides, graph = traced_text(tmp_path, text)
    pl, source = generate(problem, overrides, graph, override)
    assert kernel_templates(pl) == ["cumsum"] * 5, pl.describe()
    flags = [(s.spec["prod"], s.spec["reverse"], s.spec["exclusive"], s.spec["masked"])
             for s in pl.segments if s.template == "cumsum"]  # fmt: skip
    assert sorted(flags) == sorted([
        (True, False, False, False),
        (False, True, False, False),
        (False, False, True, False),
        (False, False, False, True),
        (True, True, False, False),
    ])  # fmt: skip
    assert_accepted(problem, source)
