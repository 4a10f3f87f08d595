"""Attacks on the library side of the model path (``docs/threat-model.md`` row 32): entries
handed inputs, shapes or parameter values they were not verified on, entries edited on disk, and
entries lent across problem files of one op key. The setup is ``test_patch_attacks.py``'s.
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from test_patch_attacks import _LOG, _entry, _inputs, _model, _promote, build, interpreted

import kernelloop
from kernelloop import settings
from kernelloop.capture import capture
from kernelloop.capture.target import load_factory
from kernelloop.kernelbench.problem import load_file
from kernelloop.library.loaded import load


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    return build(tmp_path_factory.mktemp("library_attacks"))


@pytest.fixture(autouse=True)
def _interpreted(monkeypatch, setup):
    with interpreted(monkeypatch, setup[2]):
        yield


def test_an_entry_never_sees_dtypes_it_was_not_verified_on(setup):
    """Indices as int32: the bucket reads the floating weight's dtype only, and a kernel
    loading int64 indices from an int32 tensor reads garbage."""
    file, cap, _ = setup
    model = _model(file)
    report = kernelloop.patch(model, cap, allow_untimed=True)
    assert any(s.module == "c" and s.swapped for s in report.sites), str(report)
    x, idx = _inputs()
    with torch.no_grad():
        model(x, idx)
        assert any(torch.int64 in [d for d, _ in c] for c in _LOG.calls)
        _LOG.calls.clear()
        got = model.c(idx.int())
    assert all(torch.int32 not in [d for d, _ in c] for c in _LOG.calls), _LOG.calls
    torch.testing.assert_close(got, torch.nn.functional.embedding(idx, model.c.weight))


def test_an_entry_is_given_contiguous_inputs_only(setup):
    """The evaluator verified the entries on contiguous inputs; a transposed view handed to a
    kernel that indexes flat is read in storage order."""
    _, cap, _ = setup
    problem = next(p for p in cap.glob("*_a.py"))
    op = load(problem, allow_untimed=True)
    weight = torch.randn(16, 16)
    inputs = [torch.randn(16, 8).t(), *[t.float() for t in _state(problem)]]
    inputs[3] = weight.t()  # the linear's weight, transposed (a tied embedding, say)
    with torch.no_grad():
        got = op(*inputs)
        want = op.reference(*inputs)
    assert "made contiguous" in op.explain(*inputs)
    assert _LOG.calls and all(all(c for _, c in call) for call in _LOG.calls)
    torch.testing.assert_close(got, want)


def _state(problem_file):
    """The problem's own inputs after the activation, drawn on the CPU."""
    module = load_file(problem_file).instantiate({})
    return list(module.get_inputs())[1:]


def _library_copy(lib, tmp_path):
    copy = tmp_path / "lib"
    shutil.copytree(lib, copy)
    return copy


def test_a_kernel_edited_in_the_library_is_never_run(setup, tmp_path):
    """An entry's kernel.py replaced after promotion (by hand, or by anything that can write the
    library folder): its manifest still says verified, but the code is not what was."""
    file, cap, lib = setup
    lib = _library_copy(lib, tmp_path)
    kernel = next(p for p in lib.rglob("kernel.py") if "embedding" in str(p))
    kernel.write_text(kernel.read_text().replace("return super().forward(*tensors)", "return 0"))
    model = _model(file)
    x, idx = _inputs()
    with settings.override(library_dir=lib), torch.no_grad():
        want = model.c(idx)
        kernelloop.patch(model, cap, allow_untimed=True)
        got = model.c(idx)
        op = model.c._kernelloop_patch.routes[0].run.__self__
        assert "is not as promoted" in op.explain(idx, model.c.weight)
    torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_a_manifest_edited_to_serve_other_shapes_is_skipped(setup, tmp_path):
    """manifest.json's bucket widened: the entry would serve shapes it was never checked on."""
    _, cap, lib = setup
    lib = _library_copy(lib, tmp_path)
    path = next(p for p in lib.rglob("manifest.json") if "embedding" in str(p))
    data = json.loads(path.read_text())
    data["bucket"] = "16x4_32x16"
    path.write_text(json.dumps(data))
    problem = next(p for p in cap.glob("*_c.py"))
    with settings.override(library_dir=lib), pytest.warns(UserWarning, match="does not name"):
        assert not load(problem, allow_untimed=True).has_entries


BRANCH_SOURCE = """
import torch
import torch.nn as nn


class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(16, 16)

    def forward(self, x):
        if x.shape[0] % 8 == 0:  # a path for whole tiles; the trace saw only this one
            return self.lin(x) * 2
        return self.lin(x) + 1


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.branch = Branchy()
        self.head = nn.Sequential(*(nn.Linear(16, 16) for _ in range(5)))  # a unit of its own

    def forward(self, x):
        return self.head(self.branch(x))


def make():
    torch.manual_seed(0)
    return Net().eval()


def get_inputs():
    return [torch.randn(8, 16)]
"""


def test_a_call_at_shapes_where_the_forward_branches_otherwise_runs_the_original(tmp_path):
    """Export traced the branch for 8 rows; 6 rows fall in the same shape bucket, and the
    problem (its reference and every kernel verified for it) computes the traced branch."""
    (tmp_path / "branch_model.py").write_text(BRANCH_SOURCE)
    spec = f"{tmp_path / 'branch_model.py'}:make"
    found = capture(spec, out_dir=tmp_path / "cap", device="cpu")
    for sub in found.subgraphs:
        problem = load_file(tmp_path / "cap" / sub.file)
        _promote(problem, tmp_path / "lib", _entry(problem.source))
    model = load_factory(spec)()
    with settings.override(library_dir=tmp_path / "lib"), torch.no_grad():
        report = kernelloop.patch(model, tmp_path / "cap", allow_untimed=True)
        assert any(s.module == "branch" and s.swapped for s in report.sites), str(report)
        x = torch.randn(8, 16)  # the traced path: the entry
        torch.testing.assert_close(model.branch(x), model.branch.lin(x) * 2)
        assert _LOG.calls
        _LOG.calls.clear()
        x = torch.randn(6, 16)
        torch.testing.assert_close(model.branch(x), model.branch.lin(x) + 1)
    assert not _LOG.calls


RENAMED_PROBLEM = """
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(16, 16)

    def forward(self, x):
        return torch.relu(self.linear(x))


def get_inputs():
    return [torch.randn(8, 16)]


def get_init_inputs():
    return []
"""
RENAMED_ENTRY = """
import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 16)  # the reference's linear under another name

    def forward(self, x):
        return torch.relu(self.fc(x))
"""


def test_an_entry_with_renamed_parameters_gets_the_values_it_was_verified_on(tmp_path):
    """The evaluator builds reference and ModelNew under one seed, so `self.fc` drew the
    reference's `self.linear` values and passed; loaded unseeded, its weights were others."""
    (tmp_path / "renamed.py").write_text(RENAMED_PROBLEM)
    problem = load_file(tmp_path / "renamed.py")
    _promote(problem, tmp_path / "lib", RENAMED_ENTRY)
    x = torch.randn(8, 16)
    with settings.override(library_dir=tmp_path / "lib"), torch.no_grad():
        op = load(tmp_path / "renamed.py", allow_untimed=True)
        assert op.choose(x).kind == "entry"
        torch.testing.assert_close(op(x), op.reference(x))


def test_an_entry_checked_under_a_looser_problem_does_not_serve_a_stricter_one(setup, tmp_path):
    """Same graph, so the same op key: a file declaring a loose TOLERANCE (or ALLOW_TORCH) got a
    kernel 10% off accepted, and its entry served the captured model's embedding."""
    file, cap, _ = setup
    captured = next(cap.glob("*_c.py"))
    loose = tmp_path / "loose_embedding.py"
    text = captured.read_text().replace(
        'DTYPE = "float32"', 'DTYPE = "float32"\nTOLERANCE = {"atol": 0.5, "rtol": 0.5}'
    )
    loose.write_text(text)
    problem = load_file(loose)
    wrong = _entry(text).replace(
        "return super().forward(*tensors)", "return super().forward(*tensors) * 1.1"
    )
    _promote(problem, tmp_path / "lib", wrong)
    with settings.override(library_dir=tmp_path / "lib"):
        assert load(loose, allow_untimed=True).has_entries  # its own file still uses it
        assert not load(captured, allow_untimed=True).has_entries
        model = _model(file)
        report = kernelloop.patch(model, cap, allow_untimed=True)
    site = next(s for s in report.sites if s.module == "c")
    assert not site.swapped and "no library entry" in site.status, str(report)
