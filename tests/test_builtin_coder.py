"""The builtin coder: tracing, planning, the generated file, the elementwise template through the
real evaluator, and the no-template outcome of a campaign."""

from __future__ import annotations

import pytest
from builtin_support import generate, traced
from typer.testing import CliRunner

from kernelloop.agents.builtin import module, plan, trace
from kernelloop.agents.builtin.templates.layout import symbolic_shape
from kernelloop.kernelbench import loader
from kernelloop.kernelbench.problem import load_file
from kernelloop.sandbox.evaluate import evaluate


def _generate(problem_id: str, override: dict | None = None) -> tuple[str, plan.Plan]:
    problem, overrides, graph = traced(problem_id)
    pl, source = generate(problem, overrides, graph, override, "elementwise")
    return source, pl


def test_trace_records_inputs_params_and_ops_without_allocating():
    (problem,) = loader.load("level2/10_bias_tanh_residual")
    graph = trace.trace(problem)  # the GPU size (40x256x128x128): meta tensors, no memory
    kinds = {i.kind for i in graph.inputs}
    assert kinds == {"arg", "param"}
    assert graph.forward_args == ["x", "residual"]
    assert [o.op for o in graph.ops] == ["view", "add", "tanh", "add"]
    assert graph.ops[-1].value.shape == (40, 256, 128, 128)


def test_views_are_rewritten_over_runtime_sizes():
    assert symbolic_shape((16,), (1, 16, 1, 1), "b") == "(1, b.shape[0], 1, 1,)"
    assert symbolic_shape((2, 3, 4), (6, 4), "x") == "(x.shape[0] * x.shape[1], x.shape[2],)"
    assert symbolic_shape((8,), (8, 1), "x") == "(x.shape[0], 1,)"
    assert symbolic_shape((6, 4), (2, 3, 4), "x") is None  # a split of a dim: not expressible


# An op no template covers (a running product), in a problem of its own.
_UNKNOWN_OP = """
import torch
import torch.nn as nn

n = 8
SIZES = {"cpu": {"n": 8}}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        return torch.logcumsumexp(x, dim=1)


def get_inputs():
    return [torch.rand(4, n) + 0.5]


def get_init_inputs():
    return []
"""


def _unknown_op(tmp_path):
    path = tmp_path / "unknown_op.py"
    path.write_text(_UNKNOWN_OP)
    return load_file(path)


def test_unknown_ops_are_named(tmp_path):
    problem = _unknown_op(tmp_path)
    pl = plan.plan(trace.trace(problem, problem.overrides_for("cpu")))
    assert not pl.ok
    assert pl.describe() == "no template for: logcumsumexp"
    with pytest.raises(module.EmitError, match="no template for: logcumsumexp"):
        module.generate(problem, trace.trace(problem), pl, [])


def test_generated_file_shows_its_plan_and_copies_the_reference_init():
    source, pl = _generate("level2/10_bias_tanh_residual")
    # The record the run store keeps with the candidate; the first line shows it to a reader.
    record = module.record(pl, [{}] * len(pl.segments))
    assert record["templates"] == [s.template for s in pl.segments]
    assert source.startswith(module.MARKER) and pl.describe() in source.splitlines()[0]
    assert "self.bias = nn.Parameter(torch.randn(channels) * 0.5)" in source


def test_an_init_that_needs_values_from_outside_cannot_be_copied(tmp_path):
    # Module-level classes and functions are copied (test_foreign_problems.py); other values
    # are not.
    path = tmp_path / "p.py"
    path.write_text(
        "import torch\nimport torch.nn as nn\n\n"
        "helper = nn.Linear  # a value, not a definition: nothing to copy\n\n"
        "class Model(nn.Module):\n"
        "    def __init__(self, n):\n        super().__init__()\n        self.f = helper(n, n)\n\n"
        "    def forward(self, x):\n        return torch.relu(x)\n\n"
        "n = 8\n\ndef get_inputs():\n    return [torch.randn(4, n)]\n\n"
        "def get_init_inputs():\n    return [n]\n"
    )
    problem = load_file(path)
    graph = trace.trace(problem)
    with pytest.raises(module.EmitError, match="'helper'"):
        module.generate(problem, graph, plan.plan(graph), [{"BLOCK": 1024, "num_warps": 4}])


def test_kernelbench_super_idiom_is_copied_as_zero_argument_super(tmp_path):
    """KernelBench writes super(Model, self).__init__(); Model is not in the candidate (every
    real level-1 file was refused for it)."""
    path = tmp_path / "p.py"
    path.write_text(
        "import torch\nimport torch.nn as nn\n\n"
        "class Model(nn.Module):\n"
        "    def __init__(self):\n        super(Model, self).__init__()\n\n"
        "    def forward(self, x):\n        return torch.relu(x)\n\n"
        "def get_inputs():\n    return [torch.randn(4, 8)]\n\n"
        "def get_init_inputs():\n    return []\n"
    )
    problem = load_file(path)
    graph = trace.trace(problem)
    source = module.generate(problem, graph, plan.plan(graph), [{"BLOCK": 1024, "num_warps": 4}])
    assert "super().__init__()" in source and "Model," not in source


@pytest.mark.parametrize(
    "problem_id,config",
    [
        ("level1/01_relu", None),
        ("level2/10_bias_tanh_residual", None),  # broadcast per-channel bias + residual
        ("level1/04_leaky_relu", {"BLOCK": 256, "num_warps": 1}),  # smallest config of the space
    ],
)
def test_elementwise_kernels_are_accepted_by_the_evaluator(problem_id, config):
    source, pl = _generate(problem_id, config)
    assert [s.template for s in pl.segments if s.template != "layout"] == ["elementwise"]
    (problem,) = loader.load(problem_id)
    verdict = evaluate(problem, source, size="cpu")
    assert verdict.accepted, verdict.codes


def test_builtin_coder_and_an_llm_judge_do_not_mix():
    from kernelloop.cli import app

    result = CliRunner().invoke(
        app, ["optimize", "level1/01_relu", "--coder", "builtin", "--judge", "some-model"]
    )
    assert result.exit_code == 2
    assert "go together" in result.output


def test_campaign_reports_no_template_as_an_outcome_not_a_crash(tmp_path):
    pytest.importorskip("langgraph")
    from builtin_support import builtin_campaign

    unknown = _unknown_op(tmp_path)
    store = builtin_campaign([*loader.load("level1/01_relu"), unknown], tmp_path, rounds=3)
    rows = {p.problem_id: p for p in store.problems()}
    assert rows[unknown.id].status == "unsolved"
    assert rows[unknown.id].stop_reason == "no template for: logcumsumexp"
    relu = rows["level1/01_relu"]
    assert relu.status == "solved"
    assert relu.stop_reason.startswith("verified, not timed on cpu")  # verified, not timed
    (kernel,) = store.candidates("level1/01_relu")
    assert kernel.builtin_config["templates"] == ["elementwise"]  # stored with the candidate
    assert store.summary()["correct_pct"] == 50.0


def test_float_attributes_are_read_from_the_instance_not_baked_in():
    # level2/09 multiplies by self.scale; its hold-out builds the model with another scale.
    (problem,) = loader.load("level2/09_matmul_scale_sigmoid")
    graph = trace.trace(problem, problem.overrides_for("cpu"))
    (attr,) = [i for i in graph.inputs if i.kind == "attr"]
    assert attr.target == "scale"
    mul = next(o for o in graph.ops if o.op == "mul")
    assert trace.Ref(attr.name) in mul.args
    source, _ = _generate("level2/09_matmul_scale_sigmoid")
    assert "float(self.scale)" in source
    verdict = evaluate(problem, source, size="cpu")
    assert verdict.accepted, verdict.codes


# nn.MultiheadAttention's packed projection, as torch.export writes it: one linear to 3 * E,
# unflatten into (3, E), then q, k and v selected from it. E follows the size, 3 does not.
_UNFLATTEN = """
import torch
import torch.nn as nn

BATCH = 4
DIM = 32
SIZES = {"cpu": {"BATCH": 4, "DIM": 32}}
HOLDOUT = [{"BATCH": 3, "DIM": 24}]


class Model(nn.Module):
    def forward(self, x):
        qkv = torch.ops.aten.unflatten.int(x, -1, [3, x.size(-1) // 3])
        return qkv.select(-2, 0) * qkv.select(-2, 1) + qkv.select(-2, 2)


def get_inputs():
    return [torch.randn(BATCH, 3 * DIM)]


def get_init_inputs():
    return []
"""


def test_unflatten_is_a_view_that_follows_the_size(tmp_path):
    path = tmp_path / "unflatten.py"
    path.write_text(_UNFLATTEN)
    problem = load_file(path)
    overrides = problem.overrides_for("cpu")
    graph = trace.trace(problem, overrides)
    pl, source = generate(problem, overrides, graph)
    assert pl.ok, pl.describe()
    assert ".unflatten(-1, (3, -1,))" in source  # 3 is the same at every size, E is the rest
    verdict = evaluate(problem, source, size="cpu")  # the hold-out has another E
    assert verdict.accepted, (verdict.codes, [r.message for r in verdict.reasons][:2])


# Multi-output views read through getitem: a GLU's chunk, a packed q/k/v's split (by a model
# attribute, or by a share of the width), unbind. Each hold-out has another width, so a split
# size baked in at the traced width fails there.
_SPLIT = """
import torch
import torch.nn as nn

BATCH = 4
DIM = 16
SIZES = {{"cpu": {{"BATCH": 4, "DIM": 16}}}}
HOLDOUT = [{{"BATCH": 3, "DIM": 24}}]


class Model(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dim = dim

    def forward(self, x):
{body}


def get_inputs():
    return [torch.randn({shape})]


def get_init_inputs():
    return [DIM]
"""
_SPLITS = {
    "glu": (
        "a, b = x.chunk(2, dim=-1)\nreturn a * torch.sigmoid(b)",
        "BATCH, 2 * DIM",
        "_x.chunk(2, -1)",
    ),
    "qkv_by_attribute": (
        "q, k, v = x.split(self.dim, dim=-1)\nreturn torch.softmax(q * k, dim=-1) + v",
        "BATCH, 3 * DIM",
        "_x.split(self.dim, -1)",
    ),
    "halves_by_share": (  # half the width is no attribute (self.dim is a sixth)
        "a, b = x.split(x.shape[-1] // 2, dim=-1)\nreturn torch.tanh(a) * b",
        "BATCH, 6 * DIM",
        "_x.split(_x.shape[-1] // 2, -1)",
    ),
    "unbind": ("a, b, c = x.unbind(0)\nreturn a * b + c", "3, BATCH, DIM", "_x.unbind(0)"),
    "split_rest": (  # sizes (DIM, the rest): the first is the attribute, the second what is left
        "a, b = x.split([self.dim, x.shape[-1] - self.dim], dim=-1)\n"
        "return b * a.sum(dim=-1, keepdim=True)",
        "BATCH, 3 * DIM",
        "_x.split([self.dim, _x.shape[-1] - (self.dim)], -1)",
    ),
}


def _split_problem(tmp_path, body: str, shape: str):
    path = tmp_path / "split.py"
    lines = "\n".join("        " + line for line in body.splitlines())
    path.write_text(_SPLIT.format(body=lines, shape=shape))
    problem = load_file(path)
    overrides = problem.overrides_for("cpu")
    return problem, overrides, trace.trace(problem, overrides)


@pytest.mark.parametrize("case", sorted(_SPLITS))
def test_splits_are_views_that_follow_the_size(tmp_path, case):
    body, shape, call = _SPLITS[case]
    problem, overrides, graph = _split_problem(tmp_path, body, shape)
    pl, source = generate(problem, overrides, graph)
    assert pl.ok, pl.describe()
    assert call in source and ".contiguous()" not in source  # views of x, no copy
    verdict = evaluate(problem, source, size="cpu")  # the hold-out has another width
    assert verdict.accepted, (verdict.codes, [r.message for r in verdict.reasons][:2])


def test_a_split_that_follows_the_size_by_no_rule_is_refused(tmp_path):
    # 2/12, 3/12 and 7/12 of the width: no literal, attribute or equal share explains two of
    # them, so the third is no rest either
    body = "w = x.shape[-1] // 12\na, b, c = x.split([2 * w, 3 * w, 7 * w], dim=-1)"
    body += "\nreturn a.sum(-1) + b.sum(-1) + c.sum(-1)"
    problem, overrides, graph = _split_problem(tmp_path, body, "BATCH, 12 * DIM")
    pl = plan.plan(graph)
    assert not pl.ok
    assert pl.describe().startswith("no template for: split_with_sizes (its split sizes follow")
