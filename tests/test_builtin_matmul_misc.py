"""Builtin coder: einsum, triangular, diagonal and matrix-vector products, accepted by the real
evaluator, and the forms they refuse."""

from __future__ import annotations

import pytest
from builtin_support import assert_accepted, generate, kernel_templates, match_all, traced_text

from kernelloop.agents.builtin.templates.matmul_misc import Einsum

_PROBLEM = """
import torch
import torch.nn as nn

b = 4
m = 256
k = 128
n = 96
SIZES = {{"cpu": {{"b": 2, "m": 40, "k": 24, "n": 36}}}}
HOLDOUT = [{{"b": 2, "m": 17, "k": 9, "n": 20}}]


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x4, w, a, c, v, u):
        return ({body},)


def get_inputs():
    # x4 [b, 3, m, k] @ w [k, n]; a [m, k] @ c [k, m] (square results for the triangles)
    return [torch.randn(b, 3, m, k), torch.randn(k, n), torch.randn(m, k), torch.randn(k, m),
            torch.randn(k), torch.randn(m)]


def get_init_inputs():
    return []
"""

_CASES = {
    "einsum": (
        [
            "torch.einsum('bijl,lk->bijk', x4, w)",
            "torch.einsum('bhmk,bhnk->bhmn', x4, x4)",  # B read transposed, batch of 2 letters
            "torch.einsum('ik,kj->ij', a, c)",
        ],
        ["einsum"] * 3,
    ),
    "structured": (
        [
            "torch.tril(torch.matmul(a, c))",
            "torch.triu(a @ c, diagonal=1)",
            "torch.tril(torch.bmm(x4[0], x4[1].transpose(1, 2)), -2)",
            "torch.diag(u) @ a",
            "c @ torch.diag(u)",
            "torch.mv(a, v)",
            "torch.matmul(a, v.unsqueeze(1))",
            "u @ a",
            "torch.matmul(x4, v)",
        ],
        ["tri_matmul"] * 3 + ["diag_matmul"] * 2 + ["gemv"] * 4,
    ),
}


@pytest.mark.parametrize("case", list(_CASES))
def test_products_are_accepted(tmp_path, case):
    body, templates = _CASES[case]
    problem, overrides, graph = traced_text(tmp_path, _PROBLEM.format(body=", ".join(body)))
    # 16-wide tiles: several tiles a side, so skipped, crossed and full triangle tiles all occur
    override = {"BLOCK_M": 16, "BLOCK_N": 16, "BLOCK_K": 16} if case == "structured" else None
    pl, source = generate(problem, overrides, graph, override)
    assert sorted(kernel_templates(pl)) == sorted(templates), pl.describe()
    assert_accepted(problem, source)


def test_einsums_that_are_not_one_product_are_refused(tmp_path):
    body = [
        "torch.einsum('bhmk,bhnk->bhnm', x4, x4)",  # N before M: a transposed store
        "torch.einsum('ik,jk->i', a, a)",  # j summed in one operand only
        "torch.einsum('ii,ik->ik', a[:9, :9], a[:9])",  # a diagonal
    ]
    _, _, graph = traced_text(tmp_path, _PROBLEM.format(body=", ".join(body)))
    assert match_all(Einsum(), graph) == []
