"""Captured problems do not depend on the memory layouts seen while tracing.

The export drops a ``.contiguous()`` that was a no-op at trace time: CPU attention returns its
output already laid out as ``(B, T, H, D)``, so ``y.transpose(1, 2).contiguous().view(B, T, C)``
(nanoGPT, most Hugging Face attentions) traces to a bare ``view`` that fails on any other layout
(the meta device, a GPU kernel). Written as a reshape, the problem runs wherever it is checked.
"""

from __future__ import annotations

import pytest
import torch

from kernelloop.capture import capture
from kernelloop.kernelbench import loader

ATTENTION_MODEL = """
import torch
import torch.nn as nn
import torch.nn.functional as F


class SelfAttention(nn.Module):
    def __init__(self, dim=32, heads=2):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim, bias=False)

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.qkv(x).split(C, dim=2)
        q = q.view(B, T, self.heads, C // self.heads).transpose(1, 2)
        k = k.view(B, T, self.heads, C // self.heads).transpose(1, 2)
        v = v.view(B, T, self.heads, C // self.heads).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.proj(y)


def make():
    torch.manual_seed(0)
    return SelfAttention().eval()


def inputs():
    return [torch.randn(2, 16, 32)]
"""


@pytest.fixture(scope="module")
def captured(tmp_path_factory):
    root = tmp_path_factory.mktemp("layouts")
    (root / "attn.py").write_text(ATTENTION_MODEL)
    spec = f"{root / 'attn.py'}:make"
    return capture(spec, inputs=f"{root / 'attn.py'}:inputs", out_dir=root / "out"), root


def test_a_view_after_a_dropped_contiguous_is_still_captured(captured):
    result, root = captured
    assert not result.uncovered, result.uncovered
    (sub,) = result.subgraphs
    problem = loader.load(root / "out" / sub.file)[0]
    assert ".view.default" not in problem.source  # every view is written as a reshape
    module = problem.instantiate()
    # Meta kernels lay attention's output out as (B, H, T, D): the bare view failed here.
    with torch.device("meta"):
        out = module.Model()(*module.get_inputs())
    assert out.shape == (2, 16, 32)


def test_the_reshaped_problem_equals_the_module(captured):
    result, root = captured
    (sub,) = result.subgraphs
    namespace: dict = {}
    exec(ATTENTION_MODEL, namespace)
    model = namespace["make"]()
    x = torch.randn(2, 16, 32)
    state = model.state_dict()
    inputs = [x if i.kind == "arg" else state[i.target] for i in sub.inputs]
    reference = loader.load(root / "out" / sub.file)[0].instantiate().Model()
    with torch.no_grad():
        torch.testing.assert_close(reference(*inputs), model(x))
