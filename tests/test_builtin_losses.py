"""Builtin loss templates: whole-tensor sums of elementwise terms (MSE, Huber, KL, hinge...) and
row losses (triplet margin, cosine), accepted by the real evaluator; what they refuse."""

from __future__ import annotations

import pytest
from builtin_support import (
    assert_accepted,
    generate,
    kernel_templates,
    match_all,
    traced_text,
)

from kernelloop.agents.builtin.templates.loss import Loss
from kernelloop.agents.builtin.templates.rowloss import RowLoss

_PROBLEM = """
import torch
import torch.nn as nn
import torch.nn.functional as F

batch = 64
dim = 1024
SIZES = {{"cpu": {{"batch": 24, "dim": 300}}}}
HOLDOUT = [{{"batch": 5, "dim": 37}}]


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.triplet = nn.TripletMarginLoss(margin=0.5)

    def forward(self, p, t, y, q, r):
        return ({body},)


def get_inputs():
    q = torch.rand(batch, dim).softmax(dim=-1)
    r = torch.rand(batch, dim).softmax(dim=-1)
    y = torch.randint(0, 2, (batch, 1)).float() * 2 - 1
    return [torch.rand(batch, dim), torch.rand(batch, dim), y, q, r]


def get_init_inputs():
    return []
"""

_ELEMENTWISE = [
    "torch.mean((p - t) ** 2)",
    "F.mse_loss(p, t, reduction='sum')",
    "F.smooth_l1_loss(p, t, beta=0.5)",
    "F.huber_loss(p, t, delta=0.5)",
    "F.l1_loss(p, t)",
    "F.kl_div(torch.log(q), r, reduction='batchmean')",
    # a label per row, broadcast along the features: read through a stride-0 view
    "torch.mean(torch.clamp(1 - p * y, min=0))",
    "p.sum()",
]
_ROWS = [
    "self.triplet(p, t, q)",
    "F.triplet_margin_loss(p, t, q, p=1, reduction='sum')",
    "torch.mean(1 - F.cosine_similarity(p, t, dim=1))",
    "F.cosine_similarity(p.unsqueeze(0), q.unsqueeze(0), dim=-1)",
    "F.cosine_embedding_loss(p, t, y.view(-1), margin=0.2)",
]


def _problem(tmp_path, body: list[str]):
    return traced_text(tmp_path, _PROBLEM.format(body=", ".join(body)))


@pytest.mark.parametrize("override", [None, {"BLOCK": 256, "PROGRAMS": 4}])
def test_elementwise_losses_are_one_kernel_pair_each(tmp_path, override):
    problem, overrides, graph = _problem(tmp_path, _ELEMENTWISE)
    pl, source = generate(problem, overrides, graph, override)
    assert [t for t in kernel_templates(pl) if t != "broadcast"] == ["loss"] * 8, pl.describe()
    assert_accepted(problem, source)


def test_row_losses_are_accepted(tmp_path):
    problem, overrides, graph = _problem(tmp_path, _ROWS)
    # 256-wide tiles over 300 features: two tiles a row
    pl, source = generate(problem, overrides, graph, {"BLOCK": 256})
    templates = kernel_templates(pl)
    assert templates.count("row_loss") == 5 and templates.count("loss") == 1, pl.describe()
    assert_accepted(problem, source)


def test_partial_reductions_and_swapped_triplets_are_refused(tmp_path):
    body = ["p.sum(dim=1)", "F.triplet_margin_loss(p, t, q, swap=True)"]
    _, _, graph = _problem(tmp_path, body)
    assert match_all(Loss(), graph) == []
    assert match_all(RowLoss(), graph) == []
