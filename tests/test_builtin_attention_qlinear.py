"""The builtin attention and qlinear templates: what they match (and refuse), and their generated
candidates through the real evaluator at the default and at non-default configs."""

from __future__ import annotations

import pytest
from builtin_support import (
    assert_accepted,
    generate,
    match_all,
    replace_op,
    traced,
)

from kernelloop.agents.builtin.templates.attention import Attention
from kernelloop.agents.builtin.templates.qlinear import QLinear
from kernelloop.agents.builtin.trace import Ref


def _accepted(problem_id: str, template: str, override: dict | None = None) -> None:
    problem, overrides, graph = traced(problem_id)
    pl, source = generate(problem, overrides, graph, override)
    assert [s.template for s in pl.segments] == [template], pl.describe()
    assert_accepted(problem, source)


@pytest.mark.parametrize(
    "problem_id", ["level1/20_attention", "modules/02_attention_causal_gqa_bf16"]
)
def test_attention_candidates_are_accepted(problem_id):
    _accepted(problem_id, "attention")


def test_attention_smallest_tiles_are_accepted():
    tiles = {"BLOCK_M": 16, "BLOCK_N": 16, "num_warps": 2, "num_stages": 1}
    _accepted("modules/02_attention_causal_gqa_bf16", "attention", tiles)


@pytest.mark.parametrize(
    "problem_id",
    [
        "modules/03_qgemm_w8a16",
        "modules/05_qgemm_w4a16",
        "modules/06_qgemm_w6a16",
        "modules/07_qgemm_w8a8",
    ],
)
def test_qlinear_candidates_are_accepted(problem_id):
    _accepted(problem_id, "qlinear")


@pytest.mark.parametrize("problem_id", ["modules/06_qgemm_w6a16", "modules/07_qgemm_w8a8"])
def test_qlinear_split_k_small_tiles_are_accepted(problem_id):
    # Split-K partials reduced with the bias by the second kernel; K steps smaller than a group.
    config = {"BLOCK_M": 16, "BLOCK_N": 32, "BLOCK_K": 32, "SPLIT_K": 4, "num_warps": 2}
    _accepted(problem_id, "qlinear", config)


def test_gqa_expansion_is_claimed_and_reads_unexpanded_kv():
    _, _, graph = traced("modules/02_attention_causal_gqa_bf16")
    (seg,) = match_all(Attention(), graph)
    assert seg.ops == ["repeat_interleave", "repeat_interleave_1", "scaled_dot_product_attention"]
    assert seg.inputs == [Ref("q"), Ref("k"), Ref("v")]
    assert seg.spec["causal"] is True and seg.spec["scale"] is None


def test_attention_leaves_a_repeat_on_another_dim_and_refuses_a_mask():
    _, _, graph = traced("modules/02_attention_causal_gqa_bf16")
    # Not a head expansion: the repeats stay for another template, attention reads their outputs.
    wrong_dim = replace_op(graph, "repeat_interleave", args=(Ref("k"), 2, 2))
    (seg,) = match_all(Attention(), wrong_dim)
    assert seg.ops == ["scaled_dot_product_attention"]
    assert seg.inputs == [Ref("q"), Ref("repeat_interleave"), Ref("repeat_interleave_1")]
    _, _, graph = traced("level1/20_attention")
    masked = replace_op(
        graph, "scaled_dot_product_attention", args=(Ref("q"), Ref("k"), Ref("v"), Ref("q"))
    )
    assert match_all(Attention(), masked) == []


def test_qlinear_infers_bits_group_and_symmetry():
    specs = {}
    for pid in ("modules/03_qgemm_w8a16", "modules/05_qgemm_w4a16", "modules/06_qgemm_w6a16"):
        (seg,) = match_all(QLinear(), traced(pid)[2])
        specs[pid] = seg.spec
    assert [s["bits"] for s in specs.values()] == [8, 4, 6]
    assert {s["group_size"] for s in specs.values()} == {128}
    assert specs["modules/03_qgemm_w8a16"]["mid"] == 128.0
    assert specs["modules/05_qgemm_w4a16"]["symmetric"] is False
    assert specs["modules/06_qgemm_w6a16"]["has_bias"] is True
    (seg,) = match_all(QLinear(), traced("modules/07_qgemm_w8a8")[2])
    assert seg.spec["w8a8"] and seg.spec["has_bias"] and seg.output == Ref("to_4")


def test_qlinear_refuses_other_layouts_and_plain_matmuls():
    _, _, graph = traced("modules/05_qgemm_w4a16")
    # High nibble first is not the layout the kernel unpacks.
    swapped = replace_op(graph, "stack", args=((Ref("rshift"), Ref("and_1")), -1))
    assert match_all(QLinear(), swapped) == []
    _, _, graph = traced("modules/06_qgemm_w6a16")
    wrong_shift = replace_op(graph, "rshift_2", args=(Ref("or_2"), 11))
    assert match_all(QLinear(), wrong_shift) == []
    _, _, graph = traced("level1/14_matmul_square")
    assert match_all(QLinear(), graph) == []
