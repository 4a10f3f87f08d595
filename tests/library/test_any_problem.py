"""Library entries for any problem: op keys from the normalised graph, the untimed tier, and
``kernelloop.library.load``.

The problems are written here, in tmp_path, in two styles each, so the tests say what the op key
must ignore (names, sizes, the numbers that follow sizes) and what it must keep (a softmax over
another dim, another eps). Verdicts are hand-built (library_support.make_verdict).
"""

from __future__ import annotations

import json

import pytest
import torch
from library_support import FAKE_GPU, make_verdict
from typer.testing import CliRunner

from kernelloop.cli import app
from kernelloop.kernelbench.problem import load_file
from kernelloop.library import load, opkey
from kernelloop.library.loaded import LoadError
from kernelloop.library.manifest import Manifest, ManifestError
from kernelloop.library.promote import NotPromotable, promote

SOFTMAX_MATMUL = '''"""Softmax of a product."""

import torch
import torch.nn as nn

{consts}


class Model(nn.Module):
    def forward(self, {a}, {b}):
        return torch.softmax(torch.matmul({a}, {b}) * {scale}, dim={dim})


def get_inputs():
    return [torch.randn({rows}, {inner}), torch.randn({inner}, {cols})]


def get_init_inputs():
    return []
'''

FLATTEN_RELU = '''"""ReLU of a flattened batch."""

import torch
import torch.nn as nn

B = {b}
C = 16
L = 24


class Model(nn.Module):
    def forward(self, x):
        return torch.relu(x.view(B, -1))


def get_inputs():
    return [torch.randn(B, C, L)]


def get_init_inputs():
    return []
'''

# Computes what every SOFTMAX_MATMUL with scale 0.5 and dim -1 computes, and counts its calls.
ENTRY = """import torch

CALLS = []


class ModelNew(torch.nn.Module):
    def forward(self, a, b):
        CALLS.append(tuple(a.shape))
        return torch.softmax((a @ b) * 0.5, dim=-1)
"""


def _softmax_problem(tmp_path, name, *, a="x", b="w", scale=0.5, dim=-1, sizes=(8, 16, 32)):
    rows, inner, cols = sizes
    consts = f"ROWS = {rows}\nINNER = {inner}\nCOLS = {cols}"
    source = SOFTMAX_MATMUL.format(
        consts=consts, a=a, b=b, scale=scale, dim=dim, rows="ROWS", inner="INNER", cols="COLS"
    )
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    return load_file(path)


def _flatten_problem(tmp_path, name, b):
    path = tmp_path / f"{name}.py"
    path.write_text(FLATTEN_RELU.format(b=b))
    return load_file(path)


def _verdict(problem, *, timed: bool):
    v = make_verdict(timed=timed)
    v.problem_id = problem.id
    return v


# --- op keys --------------------------------------------------------------------------------------
def test_the_key_ignores_names_and_sizes(tmp_path):
    one = _softmax_problem(tmp_path, "one")
    other = _softmax_problem(tmp_path, "other", a="left", b="right", sizes=(12, 24, 40))
    key = opkey.for_problem(one)
    assert key.startswith("graph.") and "softmax" in key
    assert opkey.for_problem(other) == key


def test_numbers_that_follow_the_size_do_not_split_a_key(tmp_path):
    # view(B, -1) records [B, 384] in the graph: both follow the size, the op does not. (Sizes
    # of 8 or less are geometry to the size probes, so they would stay in the key: safe.)
    assert opkey.for_problem(_flatten_problem(tmp_path, "f32", 32)) == opkey.for_problem(
        _flatten_problem(tmp_path, "f48", 48)
    )


SIZE_FOLLOWING = '''"""A slice and a scale that follow the size."""

import math

import torch
import torch.nn as nn

ROWS = 32
COLS = 64


class Model(nn.Module):
    def forward(self, x):
        part = x[:, : x.shape[1] // {div}]
        return part * ({num} / math.sqrt(x.shape[1]))


def get_inputs():
    return [torch.randn(ROWS, COLS)]


def get_init_inputs():
    return []
'''


@pytest.mark.parametrize("other", [{"div": 4, "num": 1.0}, {"div": 2, "num": 2.0}])
def test_size_following_numbers_that_are_no_input_dim_keep_their_values(tmp_path, other):
    # n // 2 and n // 4 both change with n; only their traced values tell the ops apart (and an
    # entry for one would compute the other wrongly). Likewise a scale computed from a size.
    def key(name, div, num):
        path = tmp_path / f"{name}.py"
        path.write_text(SIZE_FOLLOWING.format(div=div, num=num))
        return opkey.for_problem(load_file(path))

    assert key("half", 2, 1.0) != key("other", **other)
    assert key("half", 2, 1.0) == key("half_again", 2, 1.0)


WITH_WEIGHTS = '''"""A linear layer with state of its own."""

import torch
import torch.nn as nn

N = 32


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.{name} = nn.Linear(N, N)

    def forward(self, x):
        return torch.relu(self.{name}(x))


def get_inputs():
    return [torch.randn(4, N)]


def get_init_inputs():
    return []
'''


def test_state_names_are_part_of_the_key(tmp_path):
    # An entry gets the reference's weights by name: one written for `self.linear` would keep
    # its own random weights under a reference that calls the layer `self.proj`.
    def key(name, attr):
        path = tmp_path / f"{name}.py"
        path.write_text(WITH_WEIGHTS.format(name=attr))
        return opkey.for_problem(load_file(path))

    assert key("a", "linear") == key("b", "linear")
    assert key("a", "linear") != key("c", "proj")


@pytest.mark.parametrize("change", [{"dim": 0}, {"scale": 0.25}])
def test_another_constant_is_another_op(tmp_path, change):
    base = opkey.for_problem(_softmax_problem(tmp_path, "base"))
    assert opkey.for_problem(_softmax_problem(tmp_path, "changed", **change)) != base


def test_buckets_round_each_dim_up_to_a_power_of_two():
    tensors = [torch.empty(3, 100), torch.empty(100, 5)]
    assert opkey.bucket(tensors) == "4x128_128x8"
    assert opkey.tensors_dtype([torch.empty(2, dtype=torch.int64), torch.empty(2)]) == "float32"


# --- promotion of any problem, and the untimed tier -----------------------------------------------
def test_any_problem_is_promoted_under_its_graph_key(lib, tmp_path):
    problem = _softmax_problem(tmp_path, "any")
    m = promote(_verdict(problem, timed=True), ENTRY, problem, provenance={}, library=lib)
    assert m.op == opkey.for_problem(problem) and m.tier == "timed" and not m.untimed
    assert m.bucket == "8x16_16x32" and m.provenance.problem_path == str(problem.path)


def test_an_untimed_verdict_enters_only_the_untimed_tier(lib, tmp_path):
    problem = _softmax_problem(tmp_path, "cpu_only")
    verdict = _verdict(problem, timed=False)
    with pytest.raises(NotPromotable, match="needs a GPU timing"):
        promote(verdict, ENTRY, problem, provenance={}, library=lib)
    m = promote(verdict, ENTRY, problem, provenance={}, library=lib, allow_untimed=True)
    assert m.untimed and m.timing.median_ms is None and m.speedup_eager is None
    assert m.describe().startswith("UNTIMED: verified on cpu")
    assert Manifest.from_json(m.to_json()) == m
    listed = CliRunner().invoke(app, ["library", "list"])
    assert listed.exit_code == 0 and "UNTIMED" in listed.output.upper()


def test_a_timed_verdict_that_is_slower_stays_out_even_with_allow_untimed(lib, tmp_path):
    problem = _softmax_problem(tmp_path, "slow")
    v = make_verdict(candidate_ms=3.0)
    v.problem_id = problem.id
    with pytest.raises(NotPromotable, match="not reliably faster"):
        promote(v, ENTRY, problem, provenance={}, library=lib, allow_untimed=True)


def test_old_manifests_read_as_timed_and_unknown_tiers_are_refused(lib, tmp_path):
    problem = _softmax_problem(tmp_path, "old")
    m = promote(_verdict(problem, timed=True), ENTRY, problem, provenance={}, library=lib)
    old = {k: v for k, v in json.loads(m.to_json()).items() if k != "tier"}
    assert Manifest.from_dict({**old, "schema_version": 1}).tier == "timed"
    with pytest.raises(ManifestError, match="tier"):
        Manifest.from_dict({**old, "tier": "fast"})


# --- load -----------------------------------------------------------------------------------------
def _inputs(rows=8, inner=16, cols=32):
    torch.manual_seed(0)
    return torch.randn(rows, inner), torch.randn(inner, cols)


def test_load_runs_the_entry_where_it_fits_and_the_reference_elsewhere(lib, tmp_path):
    problem = _softmax_problem(tmp_path, "served")
    m = promote(_verdict(problem, timed=True), ENTRY, problem, provenance={}, library=lib)
    op = load(problem.path, library=lib)
    assert op.has_entries and op.op_key == m.op
    a, b = _inputs()
    assert op.choose(a, b).entry_id == m.entry_id
    torch.testing.assert_close(op(a, b), op.reference(a, b))
    calls = op.choose(a, b).fn  # the entry's ModelNew instance
    assert calls is op.choose(a, b).fn  # one instance per key, made once
    far = _inputs(rows=100)  # another bucket: the reference, saying why
    assert op.choose(*far).kind == "reference" and "no entry" in op.explain(*far)
    # The same computation written by someone else is served by the same entry.
    other = _softmax_problem(tmp_path, "elsewhere", a="p", b="q", sizes=(7, 15, 30))
    assert load(other, library=lib).choose(*_inputs(7, 15, 30)).kind == "entry"


def test_untimed_entries_serve_only_callers_who_ask(lib, tmp_path, monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    problem = _softmax_problem(tmp_path, "untimed")
    verdict = _verdict(problem, timed=False)
    promote(verdict, ENTRY, problem, provenance={}, library=lib, allow_untimed=True)
    a, b = _inputs()
    assert not load(problem, library=lib).has_entries
    op = load(problem, library=lib, allow_untimed=True)
    assert op.choose(a, b).kind == "entry" and "UNTIMED" in op.explain(a, b)
    monkeypatch.setenv("TRITON_INTERPRET", "0")  # CPU entries are Triton under the interpreter
    assert "TRITON_INTERPRET=1" in load(problem, library=lib, allow_untimed=True).explain(a, b)


def test_load_by_key_finds_the_reference_through_the_entry(lib, tmp_path):
    problem = _softmax_problem(tmp_path, "by_key")
    m = promote(_verdict(problem, timed=True), ENTRY, problem, provenance={}, library=lib)
    op = load(m.op, library=lib)
    assert op.op_key == m.op and op.choose(*_inputs()).kind == "entry"
    with pytest.raises(LoadError, match="no library entry"):
        load("graph.nothing.0123456789", library=lib)
    problem.path.unlink()
    with pytest.raises(LoadError, match="no reference"):
        load(m.op, library=lib)


def test_dispatch_log_prints_each_decision_once(lib, tmp_path, capsys, monkeypatch):
    from kernelloop import settings

    problem = _softmax_problem(tmp_path, "logged")
    promote(_verdict(problem, timed=True), ENTRY, problem, provenance={}, library=lib)
    with settings.override(dispatch_log=True):
        op = load(problem, library=lib)
        for _ in range(3):
            op(*_inputs())
    err = capsys.readouterr().err
    assert err.count("[kernelloop dispatch]") == 1 and FAKE_GPU in err
