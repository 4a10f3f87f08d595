"""Attacks on the path from a user's model to a patched model (``docs/threat-model.md`` row 32).

Each test builds the situation in which a kernel verified for one function would be handed a
call that computes another, and checks that the patched model computes what the original does
(library-side attacks: ``test_patch_attacks_library.py``). The entries are promoted untimed from
a stand-in verdict (as in ``test_patch.py``): they are the problem's own reference as
``ModelNew``, logging each call, so a test sees whether the entry ran; the kernels an attacker
would write differ from them exactly where the tests look.
"""

from __future__ import annotations

import json
import shutil
import sys
import types

import pytest
import torch

import kernelloop
from kernelloop import settings
from kernelloop.capture import capture
from kernelloop.capture.target import load_factory
from kernelloop.kernelbench.problem import load_file
from kernelloop.library import fingerprint
from kernelloop.library.promote import promote
from kernelloop.sandbox.verdict import Verdict

SOURCE = """
import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, slope, act="leaky"):
        super().__init__()
        self.norm = nn.BatchNorm1d(16)
        self.drop = nn.Dropout(0.5)
        self.lin = nn.Linear(16, 16)
        self.slope, self.act = slope, act

    def forward(self, x):
        y = self.lin(self.drop(self.norm(x)))
        return F.leaky_relu(y, self.slope) if self.act == "leaky" else F.relu(y)


class Net(nn.Module):
    def __init__(self, act="leaky"):
        super().__init__()
        self.a = Block(0.1, act)
        self.b = Block(0.2, act)  # the same type and shapes as a: only its slope differs
        self.c = nn.Embedding(32, 16)
        self.head = nn.Sequential(*(nn.Linear(16, 16) for _ in range(4)))  # a unit of its own

    def forward(self, x, idx):
        return self.head(self.b(self.a(x)) + self.c(idx).sum(1))


def make():
    torch.manual_seed(0)
    return Net().eval()


def make_relu():  # the same classes, another configuration
    torch.manual_seed(0)
    return Net("relu").eval()


def get_inputs():  # a few small token ids, as examples have
    return [torch.randn(8, 16), torch.randint(0, 6, (8, 3))]
"""
FAKE_ENV = {"gpu": None, "torch": "2.13.0", "triton": "3.9.0", "python": "3.12.0"}
_LOG = sys.modules.setdefault("kernelloop_test_patch_attacks_log", types.ModuleType("log"))
_LOG.calls = []


def _entry(source: str) -> str:
    reference = source.replace("class Model(nn.Module):", "class _Reference(nn.Module):")
    return reference + (
        "\n\nimport kernelloop_test_patch_attacks_log as _log\n\n\n"
        "class ModelNew(_Reference):\n"
        "    def forward(self, *tensors):\n"
        "        _log.calls.append(tuple((t.dtype, t.is_contiguous()) for t in tensors))\n"
        "        return super().forward(*tensors)\n"
    )


def _promote(problem, library_dir, source):
    verdict = Verdict(
        accepted=True,
        reasons=[],
        problem_id=problem.id,
        size="gpu",
        backend="triton",
        device="cpu (Triton interpreter)",
        sandbox="process",
    )
    with (
        pytest.MonkeyPatch.context() as mp,
        settings.override(library_dir=library_dir),
    ):
        mp.setattr(fingerprint, "arch", lambda: "cpu")
        mp.setattr(fingerprint, "environment", lambda: dict(FAKE_ENV))
        return promote(verdict, source, problem, provenance={}, allow_untimed=True)


def build(root):
    """(model file, capture folder, library holding an entry for every captured problem)."""
    (root / "attack_model.py").write_text(SOURCE)
    found = capture(f"{root / 'attack_model.py'}:make", out_dir=root / "cap", device="cpu")
    for sub in found.subgraphs:
        problem = load_file(root / "cap" / sub.file)
        _promote(problem, root / "lib", _entry(problem.source))
    return root / "attack_model.py", root / "cap", root / "lib"


def interpreted(monkeypatch, library_dir):
    """Entries run (Triton interpreted, this machine an arch "cpu"), from ``library_dir``."""
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setattr(fingerprint, "arch", lambda: "cpu")
    _LOG.calls.clear()
    return settings.override(library_dir=library_dir)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    return build(tmp_path_factory.mktemp("attacks"))


@pytest.fixture(autouse=True)
def _interpreted(monkeypatch, setup):
    with interpreted(monkeypatch, setup[2]):
        yield


def _inputs():
    torch.manual_seed(1)
    return torch.randn(8, 16), torch.randint(0, 32, (8, 3))


def _model(file, factory="make"):
    return load_factory(f"{file}:{factory}")()


def test_sites_that_differ_only_in_an_attribute_get_problems_of_their_own(setup):
    """LeakyReLU slope 0.1 and 0.2 in blocks of one type and shape: one shared problem handed
    block b the kernel for slope 0.1."""
    file, cap, _ = setup
    model = _model(file)
    x, idx = _inputs()
    with torch.no_grad():
        want = model(x, idx)
        report = kernelloop.patch(model, cap, allow_untimed=True)
        got = model(x, idx)
    swapped = {s.module for s in report.sites if s.swapped}
    assert {"a", "b"} <= swapped, str(report)
    assert len({s.problem for s in report.sites if s.module in ("a", "b")}) == 2
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    assert _LOG.calls, "the entries ran"


def test_a_model_built_with_another_configuration_is_left(setup):
    """The same classes with a relu where the capture saw a leaky relu: a patch matched by
    module names and shapes ran the leaky relu's kernel."""
    file, cap, _ = setup
    model = _model(file, "make_relu")
    x, idx = _inputs()
    with torch.no_grad():
        want = model(x, idx)
        report = kernelloop.patch(model, cap, allow_untimed=True)
        got = model(x, idx)
    left = {s.module: s.status for s in report.sites if not s.swapped}
    assert "no longer computes its problem file" in left["a"], str(report)
    assert "no longer computes its problem file" in left["b"], str(report)
    torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_an_edited_problem_file_with_a_verified_entry_is_left(setup, tmp_path):
    """A capture folder is plain files: an edited problem file (slope 0.1 -> 0.3) whose kernel
    was verified, for the edited file, would serve block a."""
    file, cap, lib = setup
    forged = tmp_path / "cap"
    shutil.copytree(cap, forged)
    target = next(p for p in forged.glob("*_a.py"))
    text = target.read_text()
    assert "0.1" in text
    target.write_text(text.replace("0.1", "0.3"))
    _promote(load_file(target), lib, _entry(target.read_text()))
    model = _model(file)
    report = kernelloop.patch(model, forged, allow_untimed=True)
    site = next(s for s in report.sites if s.module == "a")
    assert "no longer computes its problem file" in site.status, str(report)


def test_a_capture_json_with_swapped_inputs_is_left(setup, tmp_path):
    """capture.json says where each problem input comes from; with two same-shaped weights
    swapped there (norm.weight <-> norm.bias) the forward is the same and the function is not."""
    file, cap, _ = setup
    forged = tmp_path / "cap"
    shutil.copytree(cap, forged)
    data = json.loads((forged / "capture.json").read_text())
    sub = next(s for s in data["subgraphs"] if s["sites"][0]["module"] == "a")
    by_target = {i["target"]: i for i in sub["inputs"]}
    w, b = by_target["norm.weight"], by_target["norm.bias"]
    w["target"], b["target"] = b["target"], w["target"]
    (forged / "capture.json").write_text(json.dumps(data))
    model = _model(file)
    x, idx = _inputs()
    with torch.no_grad():
        want = model(x, idx)
        report = kernelloop.patch(model, forged, allow_untimed=True)
        got = model(x, idx)
    site = next(s for s in report.sites if s.module == "a")
    assert "no longer computes its problem file" in site.status, str(report)
    torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_indices_are_drawn_over_the_rows_they_index(setup):
    """The example's ids were all below 6: drawn below the batch size (8), a kernel right only
    for ids below the batch size passes every check, and reads the wrong rows of the user's
    32-row table."""
    _, cap, _ = setup
    text = next(cap.glob("*_c.py")).read_text()
    assert "torch.randint(0, DIM_32, (BATCH, DIM_3))" in text, text


def test_training_mode_runs_the_original_forward(setup):
    """Captured in eval mode; in training mode under no_grad (a frozen model, a fine-tuning
    step's statistics pass) batch norm and dropout compute something else."""
    file, cap, _ = setup
    model = _model(file)
    kernelloop.patch(model, cap, allow_untimed=True)
    model.train()
    x, idx = _inputs()
    with torch.no_grad():
        torch.manual_seed(2)
        got = model(x, idx)
        kernelloop.unpatch(model)
        torch.manual_seed(2)
        want = model(x, idx)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    # Blocks a and b (x and six state tensors) ran their own forward; the embedding's and the
    # head's graphs are the same in both modes, so their entries still run.
    assert sorted(len(c) for c in _LOG.calls) == [2, 9]


def test_autocast_runs_the_original_forward(setup):
    """Under autocast the module computes in bfloat16; the float32 kernel would not."""
    file, cap, _ = setup
    model = _model(file)
    kernelloop.patch(model, cap, allow_untimed=True)
    x, idx = _inputs()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        got = model(x, idx)
        kernelloop.unpatch(model)
        want = model(x, idx)
    assert not _LOG.calls
    torch.testing.assert_close(got, want, rtol=0, atol=0)
