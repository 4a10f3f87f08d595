"""Builtin cross-entropy template: per-row losses and the mean/sum reductions, ignored targets."""

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

from kernelloop.agents.builtin.templates.cross_entropy import CrossEntropy

_PROBLEM = """
import torch
import torch.nn as nn
import torch.nn.functional as F

m = 64
c = 300
SIZES = {{"cpu": {{"m": 24, "c": 300}}}}
HOLDOUT = [{{"m": 5, "c": 37}}]


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, logits, targets):
        return F.cross_entropy(logits, targets, {kwargs})


def get_inputs():
    # -1 marks rows to ignore in the ignore_index cases
    return [torch.randn(m, c), torch.randint(-1, c, (m,), dtype=torch.int64)]


def get_init_inputs():
    return []
"""


def _problem(tmp_path, kwargs: str):
    return traced_text(tmp_path, _PROBLEM.format(kwargs=kwargs))


def test_per_row_losses_are_accepted_with_the_smallest_block():
    problem, overrides, graph = traced("level1/21_cross_entropy")
    pl, source = generate(problem, overrides, graph, {"BLOCK": 256, "num_warps": 1})
    assert kernel_templates(pl) == ["cross_entropy"]
    assert_accepted(problem, source)


@pytest.mark.parametrize("kwargs", ["ignore_index=-1", "reduction='sum', ignore_index=-1"])
def test_mean_and_sum_skip_ignored_rows(tmp_path, kwargs):
    problem, overrides, graph = _problem(tmp_path, kwargs)
    pl, source = generate(problem, overrides, graph)
    assert kernel_templates(pl) == ["cross_entropy"]
    assert_accepted(problem, source)


def test_label_smoothing_is_refused(tmp_path):
    _, _, graph = _problem(tmp_path, "label_smoothing=0.1, ignore_index=-1")
    assert match_all(CrossEntropy(), graph) == []
