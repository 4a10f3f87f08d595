"""Builtin batch, instance and group norms (``templates/stat_norm.py``) and vector norms and
normalisations (``templates/vector_norm.py``), accepted by the real evaluator at a CPU size and a
hold-out, some with tiles small enough that every group is split across programs; and what the
templates refuse."""

from __future__ import annotations

import pytest
from builtin_support import assert_accepted, generate, kernel_templates, match_all, traced_text

from kernelloop.agents.builtin.templates.stat_norm import StatNorm
from kernelloop.agents.builtin.templates.vector_norm import VectorNorm

_PROBLEM = """
import torch
import torch.nn as nn
import torch.nn.functional as F

n = 8
c = 16
l = 64
SIZES = {{"cpu": {{"n": {n}, "c": 8, "l": {l}}}}}
HOLDOUT = [{{"n": 3, "c": 6, "l": 11}}]


class Model(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.norm = {module}
        self.eps = 1e-5
        self.w = nn.Parameter(1.0 + 0.5 * torch.randn(c))
        self.b = nn.Parameter(0.5 * torch.randn(c))
        self.register_buffer("rm", 0.3 * torch.randn(c))
        self.register_buffer("rv", 0.5 + torch.rand(c))

    def forward(self, x):
        return {expr}


def get_inputs():
    return [2.0 + torch.randn({shape})]


def get_init_inputs():
    return [c]
"""
# Tiles small enough that every cpu-size group is split into several chunks.
SPLIT = {"MAX_BLOCK": 64, "BLOCK_I": 16, "PROGRAMS": 4096, "num_warps": 1}


def _problem(tmp_path, expr: str, shape: str, module: str = "None", n: int = 2, l: int = 16):
    text = _PROBLEM.format(expr=expr, shape=shape, module=module, n=n, l=l)
    return traced_text(tmp_path, text)


def _accepted(tmp_path, template, expr, shape, module=None, override=None, **sizes):
    problem, overrides, graph = _problem(tmp_path, expr, shape, module or "None", **sizes)
    pl, source = generate(problem, overrides, graph, override, template)
    assert kernel_templates(pl) == [template], pl.describe()
    assert_accepted(problem, source)


@pytest.mark.parametrize(
    ("expr", "shape", "module", "override"),
    [
        # training mode: batch statistics, one group per channel split across programs
        ("self.norm(x)", "n, c, l, l", "nn.BatchNorm2d(c)", SPLIT),
        ("F.batch_norm(x, None, None, self.w, self.b, training=True)", "n, c, l, 3", None, None),
        # a 2-d input: the channels are contiguous columns
        ("self.norm(x)", "n * l, c", "nn.BatchNorm1d(c)", None),
        # running statistics
        ("F.batch_norm(x, self.rm, self.rv, self.w, None, training=False)", "n, c, l", None, None),
        ("self.norm(x)", "n, c, l, l", "nn.InstanceNorm2d(c, affine=True)", None),
        ("F.instance_norm(x, self.rm, self.rv, use_input_stats=False)", "n, c, l", None, None),
        ("self.norm(x)", "n, c, l, l", "nn.GroupNorm(2, c)", SPLIT),
        ("F.group_norm(x, 2, eps=1e-3)", "n, c, 5, l", None, None),
    ],
)
def test_statistics_norms_are_accepted(tmp_path, expr, shape, module, override):
    _accepted(tmp_path, "statnorm", expr, shape, module, override)


@pytest.mark.parametrize(
    ("expr", "shape", "override"),
    [
        # Frobenius: one group, the whole tensor, split into chunks at the default config
        ("x / torch.norm(x, p='fro')", "n, c, l, l", None),
        ("x / torch.sum(torch.abs(x), dim=1, keepdim=True)", "n, c * l", SPLIT),
        ("x / torch.norm(x, p=2, dim=1, keepdim=True)", "n, c * l", None),
        ("F.normalize(x, dim=1)", "n, c, l", SPLIT),
        # RMS over channels, by hand: a middle dim, with self.eps read at run time
        ("x / torch.sqrt(torch.mean(x ** 2, dim=1, keepdim=True) + self.eps)", "n, c, l, l", None),
        ("torch.linalg.vector_norm(x, ord=float('inf'), dim=(2, 3))", "n, c, l, l", None),
    ],
)
def test_vector_norms_are_accepted(tmp_path, expr, shape, override):
    _accepted(tmp_path, "vectornorm", expr, shape, override=override, n=4, l=32)


@pytest.mark.parametrize(
    "expr",
    [
        "torch.norm(x, p=3, dim=1)",  # an order the kernels do not compute
        "x / torch.norm(x, dim=(1, 3), keepdim=True)",  # dims that are not consecutive
        "x * torch.sum(torch.abs(x), dim=1, keepdim=True)",  # not a normalisation
        # no keepdim: row i's sum divides column i
        "x[0, 0] / torch.sum(torch.abs(x[0, 0]), dim=-1)",
    ],
)
def test_vector_norm_refusals(tmp_path, expr):
    _, _, graph = _problem(tmp_path, expr, "n, c, l, l")
    assert match_all(VectorNorm(), graph) == []


def test_batch_norm_statistics_follow_the_op(tmp_path):
    """F.batch_norm defaults to running statistics; a module in training mode takes the batch's."""
    _, _, graph = _problem(tmp_path, "F.batch_norm(x, self.rm, self.rv)", "n, c, l")
    assert [s.spec["stats"] for s in match_all(StatNorm(), graph)] == [False]
    _, _, graph = _problem(tmp_path, "self.norm(x)", "n, c, l", module="nn.BatchNorm1d(c)")
    assert [s.spec["stats"] for s in match_all(StatNorm(), graph)] == [True]
