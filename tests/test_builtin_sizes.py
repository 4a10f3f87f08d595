"""Size-dependent numbers in a traced graph: view splits and scalars computed at run time."""

from __future__ import annotations

import pytest
from builtin_support import assert_accepted, generate, traced, traced_text

from kernelloop.agents.builtin import sizes
from kernelloop.agents.builtin.trace import Input, Op, OpGraph, Ref, Value

pytest.importorskip("triton")


def test_a_whole_transformer_block_runs_at_every_size():
    """level3/02 splits its fused QKV projection with ``view(b, s, 3, h, d // h)`` and scales
    scores by ``sqrt(d // h)``: both change between the main and hold-out sizes."""
    problem, overrides, graph = traced("level3/02_transformer_block")
    assert graph.sizes["view"] == ("_x.shape[0]", "_x.shape[1]", "3", "self.n_heads", "-1")
    (scale,) = [i for i in graph.inputs if i.kind == "expr"]
    assert scale.target == "(x.shape[2] / self.n_heads) ** 0.5"
    pl, source = generate(problem, overrides, graph)
    assert "self.n_heads" in source
    # the written-out attention runs as the flash kernel, its scale the reference's own
    (att,) = [seg for seg in pl.segments if seg.template == "attention"]
    assert att.ops == ["matmul", "div", "softmax", "matmul_1"]
    assert att.spec["scale_expr"] == "1.0 / float((x.shape[2] / self.n_heads) ** 0.5)"
    assert_accepted(problem, source)  # main size and the hold-out (other d_model, seq, batch)


def _graph(x_shape, view_shape, scalar, ints):
    x = Input("x", "arg", Value(x_shape, "float32"), 0)
    ops = [
        Op("view", "view", "default", (Ref("x"), view_shape), {}, Value(view_shape, "float32")),
        Op("mul", "mul", "Tensor", (Ref("view"), scalar), {}, Value(view_shape, "float32")),
    ]
    return sizes.Trace(OpGraph([x], ops, [Ref("mul")], ["x"]), ints)


@pytest.mark.parametrize(
    ("main_scalar", "other_scalar", "expected"),
    [
        (64**-0.5, 48**-0.5, "(x.shape[1]) ** -0.5"),
        ((64 / 4) ** 0.5, (48 / 4) ** 0.5, "(x.shape[1] / self.heads) ** 0.5"),
        (6.0, 3.0, "x.shape[0]"),
    ],
)
def test_sizes_are_input_dims_attributes_literals_or_one_unknown(
    main_scalar, other_scalar, expected
):
    main = _graph((6, 64), (6, 2, 4, 8), main_scalar, {"heads": 4, "groups": 2})
    other = _graph((3, 48), (3, 2, 4, 6), other_scalar, {"heads": 4, "groups": 2})
    graph = sizes.bind(main, [other])
    # an attribute of the same value wins over a literal; the one size nothing explains is -1
    assert graph.sizes["view"] == ("_x.shape[0]", "self.groups", "self.heads", "-1")
    (expr,) = [i for i in graph.inputs if i.kind == "expr"]
    assert expr.target == expected and graph.ops[1].args[1] == Ref(expr.name)


def test_unexplained_changes_and_different_structures_are_left_alone():
    main = _graph((6, 64), (6, 2, 4, 8), 0.123, {})
    other = _graph((3, 48), (3, 3, 4, 4), 0.456, {})
    graph = sizes.bind(main, [other])
    assert "view" not in graph.sizes  # two sizes change with no rule: no guess
    assert graph.ops[1].args[1] == 0.123 and not [i for i in graph.inputs if i.kind == "expr"]
    odd = _graph((3, 48), (3, 2, 4, 6), 0.5, {})
    odd.graph.ops.pop()
    assert sizes.bind(_graph((6, 64), (6, 2, 4, 8), 0.5, {}), [odd]).sizes == {}


def _split(op: str, width: int, arg, pieces: int, ints: dict) -> sizes.Trace:
    x = Input("x", "arg", Value((4, width), "float32"), 0)
    out = tuple(Value((4, width // pieces), "float32") for _ in range(pieces))
    split = Op("split", op, "default", (Ref("x"), arg, -1), {}, out)
    item = Op("getitem", "getitem", "default", (Ref("split"), 0), {}, out[0])
    return sizes.Trace(OpGraph([x], [split, item], [Ref("getitem")], ["x"]), ints)


@pytest.mark.parametrize(
    ("op", "main_arg", "other_arg", "pieces", "expected"),
    [
        ("split", 8, 6, 3, ("_x.shape[-1] // 3",)),  # an equal share of the cut dim
        ("split", 4, 3, 6, ("self.width",)),  # an int attribute it follows
        ("chunk", 3, 3, 3, ("3",)),  # a count that never changes
        ("split_with_sizes", (16, 8), (12, 6), 2, ("self.dim", "_x.shape[-1] - (self.dim)")),
        ("chunk", 3, 2, 3, None),  # a count that changes by no rule: refused
        ("split_with_sizes", (8, 16), (9, 9), 2, None),  # two sizes by no rule
    ],
)
def test_split_sizes_are_literals_attributes_shares_or_refused(
    op, main_arg, other_arg, pieces, expected
):
    main = _split(op, 24, main_arg, pieces, {"width": 4, "dim": 16})
    other = _split(op, 18, other_arg, pieces, {"width": 3, "dim": 12})
    graph = sizes.bind(main, [other])
    assert graph.sizes.get("split") == expected
    assert ("split" in graph.unsized) is (expected is None)


_WRITTEN_OUT = """
import torch
import torch.nn as nn

b, h, s, d = 2, 3, 24, 16
SIZES = {"cpu": {}}
HOLDOUT = [{"s": 17}]


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = 0.3

    def forward(self, q, k, v):
        p = torch.softmax((q @ k.transpose(-2, -1)) * self.scale, dim=-1)
        return RETURN


def get_inputs():
    return [torch.randn(b, h, s, d) for _ in range(3)]


def get_init_inputs():
    return []
"""


@pytest.mark.parametrize(("returned", "fused"), [("p @ v", True), ("(p @ v, p)", False)])
def test_written_out_attention_is_fused_only_when_its_scores_stay_inside(tmp_path, returned, fused):
    problem, overrides, graph = traced_text(tmp_path, _WRITTEN_OUT.replace("RETURN", returned))
    pl, source = generate(problem, overrides, graph)
    assert ("attention" in [seg.template for seg in pl.segments]) is fused
    assert_accepted(problem, source)  # a float attribute scale, at two sequence lengths
