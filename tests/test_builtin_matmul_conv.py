"""The builtin matmul and conv2d templates: what they match (and refuse), and their generated
candidates through the real evaluator at the default and at the smallest tiles."""

from __future__ import annotations

import pytest
from builtin_support import (
    assert_accepted,
    generate,
    kernel_templates,
    match_all,
    replace_op,
    traced,
)

from kernelloop.agents.builtin import plan
from kernelloop.agents.builtin.templates.conv import Conv2d
from kernelloop.agents.builtin.templates.matmul import Matmul
from kernelloop.agents.builtin.trace import Input, Op, OpGraph, Ref, Value


def _accepted(problem_id: str, templates: list[str], override: dict | None = None) -> None:
    problem, overrides, graph = traced(problem_id)
    pl, source = generate(problem, overrides, graph, override)
    assert kernel_templates(pl) == templates, pl.describe()
    assert_accepted(problem, source)


_SMALLEST = {"BLOCK_N": 16, "BLOCK_K": 16, "GROUP_M": 1, "num_warps": 2, "num_stages": 1}


# A transposed operand (A.T is a host view) and a linear with a bias, relu and a scale vector.
@pytest.mark.parametrize(
    "problem_id", ["level1/17_matmul_transposed_a", "level2/04_linear_relu_scale"]
)
def test_matmul_candidates_are_accepted(problem_id):
    _accepted(problem_id, ["matmul"])


def test_matmul_smallest_tiles_are_accepted_on_bmm():
    _accepted("level1/16_bmm", ["matmul"], {"BLOCK_M": 16, **_SMALLEST})


# fp16 NHWC input with hold-out strides/dilations, and an eval batch_norm folded in.
@pytest.mark.parametrize(
    "problem_id", ["modules/04_conv2d_bias_relu_nhwc", "level2/08_conv2d_batchnorm_relu"]
)
def test_conv2d_candidates_are_accepted(problem_id):
    _accepted(problem_id, ["conv2d"])


def test_conv2d_smallest_tiles_are_accepted():
    _accepted("level2/02_conv2d_bias_relu", ["conv2d"], {"BLOCK_M": 32, **_SMALLEST})


def test_matmul_fuses_bias_activation_and_scale():
    (seg,) = match_all(Matmul(), traced("level2/04_linear_relu_scale")[2])
    assert seg.ops == ["linear", "relu", "mul"]
    assert [r.name for r in seg.inputs] == ["x", "p_linear_weight", "p_linear_bias", "p_scale"]
    assert seg.spec["bias_rank"] == 1 and seg.spec["epilogue"]["operands"] == 1


def test_mlp_is_three_matmul_segments():
    pl = plan.plan(traced("level3/01_mlp")[2])
    assert [s.ops for s in pl.segments] == [
        ["linear", "relu"],
        ["linear_1", "relu_1"],
        ["linear_2"],
    ]


def _product_graph(op: str, a: tuple[int, ...], b: tuple[int, ...]) -> OpGraph:
    f32 = "float32"
    inputs = [Input("a", "arg", Value(a, f32), 0), Input("b", "arg", Value(b, f32), 1)]
    out = Value((*a[:-1], b[-1]) if len(b) > 1 else a[:-1], f32)
    ops = [Op(op, op, "default", (Ref("a"), Ref("b")), {}, out)]
    return OpGraph(inputs, ops, [Ref(op)], ["a", "b"])


def test_matmul_refuses_vectors_and_wrong_ranks():
    assert not match_all(Matmul(), _product_graph("matmul", (4, 8), (8,)))  # matrix-vector
    assert not match_all(Matmul(), _product_graph("mm", (2, 4, 8), (8, 5)))  # mm is 2-D only
    assert not match_all(Matmul(), _product_graph("bmm", (4, 8), (8, 5)))  # bmm is 3-D only
    assert match_all(Matmul(), _product_graph("matmul", (2, 4, 8), (8, 5)))


def test_conv2d_refuses_groups():
    graph = traced("level2/02_conv2d_bias_relu")[2]
    conv = graph.ops[graph.index("conv2d")]
    grouped = replace_op(graph, "conv2d", args=(*conv.args, (1, 1), 2))
    assert not match_all(Conv2d(), grouped)
    (seg,) = match_all(Conv2d(), graph)
    assert seg.ops == ["conv2d", "relu"] and seg.spec["holder"] == "self.conv"


def test_conv2d_leaves_training_batch_norm():
    graph = traced("level2/08_conv2d_batchnorm_relu")[2]
    bn = graph.ops[graph.index("batch_norm")]
    (seg,) = match_all(Conv2d(), graph)
    assert seg.ops == ["conv2d", "batch_norm", "relu"]
    args = list(bn.args)
    args[5] = True  # training: batch statistics, not a per-channel affine
    (seg,) = match_all(Conv2d(), replace_op(graph, "batch_norm", args=tuple(args)))
    assert seg.ops == ["conv2d"]


def test_functional_conv2d_reads_its_hyper_parameters_from_the_model():
    (seg,) = match_all(Conv2d(), traced("modules/04_conv2d_bias_relu_nhwc")[2])
    assert seg.spec["holder"] == "self" and seg.spec["hyper"] == [[1, 1], [1, 1], [1, 1]]
