"""Size-dependent numbers in a traced graph: view splits and scalars computed at run time."""

from __future__ import annotations

import pytest
from builtin_support import assert_accepted, generate, traced

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
    _, source = generate(problem, overrides, graph)
    assert "self.n_heads" in source
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
