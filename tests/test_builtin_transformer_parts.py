"""Builtin coder on transformer parts as Hugging Face model files write them: every problem a
capture of ``tests/fixtures/models/hf_style.py`` makes is planned by the templates, and the
parts that needed new ones are accepted by the real evaluator (its hold-out sizes included):

- token and position embeddings (``embedding``: a row gather by integer indices);
- GPT-2 attention: a bool causal-mask buffer sliced to the sequence (``slice`` as a view whose
  bound follows the input), the scale and mask value as 0-d ``torch.full`` (folded to
  literals), and the upcast variant's ``baddbmm`` into an unread ``torch.empty`` with
  ``masked_fill(~mask, min)``;
- Llama attention: rotary caches sliced to the sequence, ``rotate_half`` by slices and ``cat``,
  grouped-query ``repeat_kv`` by ``expand`` + ``reshape``; eager, a causal mask made per call
  by ``triu(full((t, t), min))`` (``fill`` and ``triangle``), and one problem with its
  projections (capture counts a written-out attention once, as it counts SDPA).
"""

from __future__ import annotations

import pytest
from builtin_support import assert_accepted, generate, traced_text
from paths import FIXTURES

from kernelloop.agents.builtin.constants import simplify
from kernelloop.agents.builtin.trace import trace
from kernelloop.capture import capture
from kernelloop.capture.record import Op
from kernelloop.capture.units import heavy
from kernelloop.kernelbench.problem import load_file
from kernelloop.sandbox.evaluate import evaluate

MODELS = FIXTURES / "models" / "hf_style.py"


@pytest.fixture(scope="module")
def captured(tmp_path_factory):
    """Problem file by ``factory:module``, over the default and the eager variants."""
    files = {}
    for factory in ("make_lm", "make_lm_eager"):
        out = tmp_path_factory.mktemp(factory)
        for sub in capture(f"{MODELS}:{factory}", out_dir=out).subgraphs:
            files[f"{factory}:{sub.sites[0].module}"] = out / sub.file
    return files


def _traced(path):
    """A captured problem (its size is the model's: no declared CPU size), its size and graph."""
    problem = load_file(path)
    overrides = problem.overrides_for(problem.default_size("cpu"), None)
    return problem, overrides, trace(problem, overrides)


def test_every_captured_problem_is_planned(captured):
    parts = {"wte", "wpe", "gpt2", "llama"}
    assert {f"{f}:{m}" for f in ("make_lm", "make_lm_eager") for m in parts} <= set(captured)
    for name, path in captured.items():
        problem, overrides, graph = _traced(path)
        pl, _ = generate(problem, overrides, graph)
        assert pl.ok, (name, pl.describe())


@pytest.mark.parametrize(
    ("name", "templates"),
    [
        ("make_lm:wte", {"embedding"}),
        ("make_lm:gpt2", {"matmul", "softmax"}),
        ("make_lm_eager:gpt2", {"matmul", "softmax"}),
        ("make_lm:llama", {"cat", "attention"}),
        ("make_lm_eager:llama", {"cat", "fill", "triangle", "softmax"}),
    ],
)
def test_transformer_part_is_accepted(captured, name, templates):
    problem, overrides, graph = _traced(captured[name])
    pl, source = generate(problem, overrides, graph)
    assert templates <= {s.template for s in pl.segments}, pl.describe()
    verdict = evaluate(problem, source)
    assert verdict.accepted, (verdict.codes, [r.message for r in verdict.reasons][:2])


def test_rewrites_leave_no_constant_or_unread_buffer(captured):
    _, _, graph = _traced(captured["make_lm_eager:gpt2"])
    ops = {o.op for o in graph.ops}
    # the 0-d scalars, the beta=0 product's buffer and the negated mask are gone
    assert not ops & {"empty", "bitwise_not", "logical_not", "masked_fill"}
    assert not any(o.op == "full" and o.args[0] == () for o in graph.ops)
    assert simplify(graph).ops == graph.ops  # a second pass finds nothing more


def test_a_written_out_attention_counts_once():
    def ops(*names):
        return [Op(n, 0.0, 0.0) for n in names]

    eager = ops("linear", "linear", "linear", "matmul", "div", "softmax", "matmul", "linear")
    assert heavy(eager) == 5  # as with scaled_dot_product_attention
    assert heavy(ops("matmul", "matmul", "softmax")) == 2  # no context product after it
    assert heavy(ops("linear", "softmax", "matmul")) == 2  # no scores product before it


_INTERLEAVED = """
import torch
import torch.nn as nn

batch = 2
heads = 4
seq = 24
head_dim = 16
SIZES = {"cpu": {"batch": 2, "heads": 2, "seq": 12, "head_dim": 8}}
HOLDOUT = [{"batch": 1, "heads": 3, "seq": 7, "head_dim": 12}]


class Model(nn.Module):
    def forward(self, x, cos, sin):
        # GPT-J's interleaved rotary: even and odd lanes by strided slices, rejoined by stack
        x1, x2 = x[..., ::2], x[..., 1::2]
        rotated = torch.stack((-x2, x1), dim=-1).flatten(-2)
        return x * cos + rotated * sin


def get_inputs():
    return [torch.randn(batch, heads, seq, head_dim), torch.randn(seq, head_dim),
            torch.randn(seq, head_dim)]


def get_init_inputs():
    return []
"""


def test_interleaved_rotary_by_strided_slices_and_stack(tmp_path):
    problem, overrides, graph = traced_text(tmp_path, _INTERLEAVED)
    pl, source = generate(problem, overrides, graph)
    assert "cat" in {s.template for s in pl.segments}, pl.describe()
    assert_accepted(problem, source)
