"""A submodule its parent calls as ``self.mlp.forward(x)`` (llama2.c's blocks do) is a unit.

Module hooks run only through ``__call__``, so capture used to see such a call's ops as its
parent's: the parent held too many heavy ops, split, and the child's work was left uncovered.
Capture now records direct ``forward`` calls, and the patch reaches them (both use the
instance's ``forward`` attribute).
"""

from __future__ import annotations

import torch

import kernelloop
from kernelloop import model_patch
from kernelloop.capture import capture
from kernelloop.kernelbench import loader

DIRECT_MODEL = '''
import torch
import torch.nn as nn


class MLP(nn.Module):
    def __init__(self, dim=16):
        super().__init__()
        self.up = nn.Linear(dim, 2 * dim, bias=False)
        self.down = nn.Linear(2 * dim, dim, bias=False)

    def forward(self, x):
        return self.down(torch.relu(self.up(x)))


class Block(nn.Module):
    """Six linears in all: more heavy ops than one problem takes, so it splits."""

    def __init__(self, dim=16):
        super().__init__()
        self.proj = nn.ModuleList(nn.Linear(dim, dim, bias=False) for _ in range(4))
        self.mlp = MLP(dim)

    def forward(self, x):
        for p in self.proj:
            x = p(x)
        return x + self.mlp.forward(x)  # a direct call: no module hooks run


def make():
    torch.manual_seed(0)
    return Block().eval()


def inputs():
    return [torch.randn(2, 8, 16)]
'''


def _captured(tmp_path):
    path = tmp_path / "direct.py"
    path.write_text(DIRECT_MODEL)
    spec = f"{path}:make"
    return capture(spec, inputs=f"{path}:inputs", out_dir=tmp_path / "out"), spec


def test_a_direct_forward_call_is_captured_as_its_module(tmp_path):
    result, spec = _captured(tmp_path)
    mlp = next(s for s in result.subgraphs if [x.module for x in s.sites] == ["mlp"])
    assert set(mlp.ops) >= {"linear", "relu"}
    uncovered = {u.module: u.ops for u in result.uncovered}
    assert "linear" not in uncovered.get("", ()), uncovered  # the MLP's ops are its own now
    namespace: dict = {}
    exec(DIRECT_MODEL, namespace)
    model = namespace["make"]()
    assert "forward" not in model.mlp.__dict__  # capture left the model as it found it
    x = torch.randn(2, 8, 16)
    state = model.mlp.state_dict()
    reference = loader.load(tmp_path / "out" / mlp.file)[0].instantiate().Model()
    with torch.no_grad():
        h = x
        for p in model.proj:
            h = p(h)
        args = [h if i.kind == "arg" else state[i.target] for i in mlp.inputs]
        torch.testing.assert_close(reference(*args), model.mlp(h))


class _Marked(torch.nn.Module):
    """A LoadedOp stand-in whose output shows that the library ran (reference + 100)."""

    def __init__(self, problem) -> None:
        super().__init__()
        self.problem = problem
        self.reference_model = problem.instantiate().Model()
        self.op_key = "graph.marked.0123456789"
        self.allow_untimed = True
        self.has_entries = True
        self.entries = ["an entry"]
        self.calls = 0

    def forward(self, *tensors):
        self.calls += 1
        return self.reference_model(*tensors) + 100

    def reference(self, *tensors):
        return self.reference_model(*tensors)


def test_the_patch_reaches_a_direct_forward_call(tmp_path, monkeypatch):
    result, _ = _captured(tmp_path)
    loaded: dict[str, _Marked] = {}

    def load(path, allow_untimed):
        loaded[path.name] = _Marked(loader.load(path)[0])
        return loaded[path.name]

    monkeypatch.setattr(model_patch.library, "load", load)
    namespace: dict = {}
    exec(DIRECT_MODEL, namespace)
    model = namespace["make"]()
    report = kernelloop.patch(model, tmp_path / "out" / "capture.json", allow_untimed=True)
    mlp = next(s for s in result.subgraphs if [x.module for x in s.sites] == ["mlp"])
    assert "mlp" in {s.module for s in report.sites if s.swapped}, str(report)
    with torch.no_grad():
        model(torch.randn(2, 8, 16))
    assert loaded[mlp.file].calls == 1  # Block.forward's self.mlp.forward(x) ran the library
    kernelloop.unpatch(model)
    assert "forward" not in model.mlp.__dict__
