"""Problems as others write them: derived CPU sizes and hold-outs, the preflight (random
references, sizes that cannot fit), training mode, and suites with files that are no problem."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from kernelloop.cli import app
from kernelloop.kernelbench import autosize, hygiene, instance, loader, preflight, probe
from kernelloop.kernelbench.problem import load_file
from kernelloop.sandbox.evaluate import evaluate
from kernelloop.sandbox.plan import make_plan

# Written as KernelBench writes files: GPU sizes only, ``super(Model, self)``, positional init
# arguments, a chained and an unpacking assignment, a shape constant computed from literals.
KB_STYLE = '''
import torch
import torch.nn as nn


class Model(nn.Module):
    """Scales each row by a learned vector, then applies ReLU."""

    def __init__(self, features: int, kernel_size: int):
        super(Model, self).__init__()
        self.scale = nn.Parameter(torch.randn(features))
        self.kernel_size = kernel_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x * self.scale)


batch_size = rows = 16384
features, kernel_size = 8192, 3
input_shape = (8192 * 2,)


def get_inputs():
    return [torch.rand(batch_size, features)]


def get_init_inputs():
    return [features, kernel_size]
'''

COUPLED = """
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super(Model, self).__init__()

    def forward(self, a, b):
        return torch.mean(torch.clamp(1 - a * b, min=0))  # b broadcasts: batch_size == n


batch_size = 32768
input_shape = (32768,)


def get_inputs():
    return [torch.rand(batch_size, *input_shape), torch.rand(batch_size)]


def get_init_inputs():
    return []
"""

HONEST = """
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def _scaled_relu(x_ptr, s_ptr, o_ptr, n, cols, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    m = offs < n
    x = tl.load(x_ptr + offs, mask=m)
    s = tl.load(s_ptr + offs % cols, mask=m)
    tl.store(o_ptr + offs, tl.maximum(x * s, 0.0), mask=m)


class ModelNew(nn.Module):
    def __init__(self, features, kernel_size):
        super().__init__()
        self.scale = nn.Parameter(torch.randn(features))

    def forward(self, x):
        out = torch.empty(SHAPE, device=x.device, dtype=x.dtype)
        n = out.numel()
        _scaled_relu[(triton.cdiv(n, 1024),)](x, self.scale, out, n, out.shape[1], BLOCK=1024)
        return out
"""


def _write(tmp_path, text: str, name: str = "problem.py"):
    path = tmp_path / name
    path.write_text(text)
    return load_file(path)


def test_constants_as_others_write_them_are_overridable(tmp_path):
    p = _write(tmp_path, KB_STYLE)
    assert p.constants["batch_size"] == p.constants["rows"] == 16384
    assert p.constants["features"] == 8192 and p.constants["input_shape"] == (16384,)
    assert p.summary.startswith("Scales each row")  # the class docstring when the module has none
    module = p.instantiate({"batch_size": 7, "features": 5})
    assert (module.batch_size, module.rows, module.features, module.kernel_size) == (7, 16384, 5, 3)
    shown = p.coder_source({"batch_size": 7, "features": 5})
    assert "batch_size = 7\nrows = 16384" in shown and "features = 5\nkernel_size = 3" in shown


def test_derived_size_fits_the_budget_keeps_geometry_and_the_op_graph(tmp_path):
    p = _write(tmp_path, KB_STYLE)
    derived = autosize.derive(p)
    assert derived.fits and derived.largest <= autosize.LARGEST_ELEMENTS
    assert "kernel_size" not in derived.overrides and "geometry" in derived.why["kernel_size"]
    assert derived.overrides["features"] < 8192 and derived.overrides["batch_size"] < 16384
    at_gpu, at_cpu = probe.run(p, {}), probe.run(p, derived.overrides)
    assert at_gpu.op_sequence == at_cpu.op_sequence
    assert p.overrides_for("auto") == derived.overrides
    assert p.default_size("cpu") == "auto" and p.default_size("cuda") == "gpu"


def test_sizes_that_must_stay_equal_shrink_together(tmp_path):
    p = _write(tmp_path, COUPLED)
    derived = autosize.derive(p)
    assert derived.fits
    assert derived.overrides["batch_size"] == derived.overrides["input_shape"][0]
    variants = autosize.holdouts(p, derived.overrides, seed=5)
    assert variants and all(v["batch_size"] == v["input_shape"][0] for v in variants)


def test_derived_holdouts_are_odd_secret_and_keep_the_graph(tmp_path):
    p = _write(tmp_path, KB_STYLE)
    main = autosize.derive(p).overrides
    drawn = [autosize.holdouts(p, main, seed=s) for s in (1, 2, 3)]
    assert all(len(d) == autosize.DERIVED_HOLDOUTS for d in drawn)
    assert drawn[0] != drawn[1] or drawn[1] != drawn[2]  # another seed, other sizes
    for variant in drawn[0]:
        assert variant != main and variant["features"] % 2 == 1
        assert probe.run(p, variant).op_sequence == probe.run(p, main).op_sequence
    plan = make_plan(p, device="cpu")
    assert plan.size == "auto" and {"holdout1", "holdout2"} <= set(plan.variants)
    public = autosize.coder_probes(p, main)
    assert public == autosize.coder_probes(p, main)  # the coder's probes are fixed, not drawn


def test_a_kernel_that_hard_codes_the_shape_it_saw_fails_the_derived_holdouts(tmp_path):
    p = _write(tmp_path, KB_STYLE)
    main = autosize.derive(p).overrides
    shape = (main["batch_size"], main["features"])
    honest = evaluate(p, HONEST.replace("SHAPE", "x.shape"), device="cpu")
    assert honest.accepted, [r.message for r in honest.reasons]
    assert set(honest.sizes) == {"main", "holdout1", "holdout2"}  # the verdict lists them
    cheat = evaluate(p, HONEST.replace("SHAPE", repr(shape)), device="cpu")
    assert not cheat.accepted and "WRONG_SHAPE" in cheat.codes


def test_a_size_the_machine_cannot_hold_is_refused_with_the_estimate(tmp_path):
    p = _write(tmp_path, KB_STYLE.replace("16384", "2_000_000"))
    with pytest.raises(preflight.SizeError, match=r"GB per worker.*--size auto"):
        make_plan(p, device="cpu", size="gpu")
    result = CliRunner().invoke(
        app, ["eval", str(p.path), str(tmp_path / "none.py"), "--size", "gpu"]
    )
    assert result.exit_code == 2


DROPOUT = """
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.drop = nn.Dropout(0.5)
        self.norm = nn.BatchNorm1d(16)

    def forward(self, x):
        return self.drop(self.norm(x))

{extra}
batch_size = 64
SIZES = {{"cpu": {{"batch_size": 64}}}}
HOLDOUT = [{{"batch_size": 33}}]


def get_inputs():
    return [torch.randn(batch_size, 16)]


def get_init_inputs():
    return []
"""


def test_a_random_reference_is_not_evaluable_unless_it_opts_into_eval_mode(tmp_path):
    p = _write(tmp_path, DROPOUT.format(extra=""))
    with pytest.raises(preflight.NotEvaluable, match="EVAL_MODE = True"):
        make_plan(p, device="cpu")
    report = hygiene.check(p)
    assert not report.passed and "random" in report.checks["evaluable"].detail
    inference = _write(tmp_path, DROPOUT.format(extra="EVAL_MODE = True"), "eval_mode.py")
    assert inference.eval_mode
    make_plan(inference, device="cpu")
    model = instance.build_model(inference.instantiate(), 0, "float32")
    assert not model.training


def test_batch_norm_is_traced_in_training_mode_as_the_reference_runs(tmp_path):
    from kernelloop.agents.builtin import trace

    p = _write(tmp_path, DROPOUT.format(extra="").replace("self.drop(", "("))
    graph = trace.trace(p, p.overrides_for("cpu"))
    (bn,) = [o for o in graph.ops if o.op == "batch_norm"]
    assert bn.args[5] is True  # batch statistics, not the running ones
    assert not [o for o in graph.ops if o.op.endswith("_")]  # num_batches_tracked += 1 dropped
    model = instance.build_model(p.instantiate(), 0, "float32")
    assert model.training


def test_problems_check_reports_every_file_of_a_foreign_suite(tmp_path):
    (tmp_path / "a_kb.py").write_text(KB_STYLE)
    (tmp_path / "b_dropout.py").write_text(DROPOUT.format(extra=""))
    (tmp_path / "c_not_a_problem.py").write_text("x = 1\n")
    (tmp_path / "d_syntax.py").write_text("def broken(:\n")
    skipped: list = []
    assert [p.id for p in loader.load(tmp_path, skipped)] == ["a_kb", "b_dropout"]
    assert len(skipped) == 2
    result = CliRunner().invoke(app, ["problems", "check", str(tmp_path), "--json"])
    assert result.exit_code == 1, result.output
    rows = {r["problem_id"]: r for r in json.loads(result.output)}
    assert set(rows) == {"a_kb", "b_dropout", "c_not_a_problem", "d_syntax"}
    assert rows["a_kb"]["passed"] and rows["a_kb"]["size"] == "auto"
    assert not rows["b_dropout"]["passed"] and not rows["d_syntax"]["passed"]


def test_problems_show_prints_the_derived_size_and_why(tmp_path):
    p = _write(tmp_path, KB_STYLE)
    result = CliRunner().invoke(app, ["problems", "show", str(p.path)])
    assert result.exit_code == 0, result.output
    assert "derived cpu size" in result.output and "kept: geometry" in result.output


MODE_AWARE = """
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def _scale(x_ptr, o_ptr, n, factor, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    m = offs < n
    tl.store(o_ptr + offs, tl.load(x_ptr + offs, mask=m) * factor, mask=m)


class ModelNew(nn.Module):
    def forward(self, x):
        out = torch.empty_like(x)
        factor = 2.0 if self.training else 1.0  # right only in the mode the reference runs in
        _scale[(triton.cdiv(x.numel(), 1024),)](x, out, x.numel(), factor, BLOCK=1024)
        return out
"""

IDENTITY_WITH_DROPOUT = """
import torch
import torch.nn as nn

EVAL_MODE = True


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        return self.drop(x)


batch_size = 64
SIZES = {"cpu": {"batch_size": 64}}
HOLDOUT = [{"batch_size": 33}]


def get_inputs():
    return [torch.randn(batch_size, 16)]


def get_init_inputs():
    return []
"""


def test_eval_mode_reaches_the_candidate_model(tmp_path):
    p = _write(tmp_path, IDENTITY_WITH_DROPOUT)
    verdict = evaluate(p, MODE_AWARE, device="cpu")
    assert verdict.accepted, [r.message for r in verdict.reasons]


INLINE = """
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, num_classes=1000):
        super(Model, self).__init__()
        self.conv1 = nn.Conv2d(3, 96, kernel_size=11, stride=4, padding=2)

    def forward(self, x):
        return self.conv1(x)


batch_size = 256
num_classes = 1000


def get_inputs():
    return [torch.rand(batch_size, 3, 224, 224)]


def get_init_inputs():
    return [num_classes]
"""


def test_sizes_written_inline_in_get_inputs_are_constants_too(tmp_path):
    p = _write(tmp_path, INLINE)
    assert (p.constants["get_inputs_2"], p.constants["get_inputs_3"]) == (224, 224)
    module = p.instantiate({"get_inputs_2": 31, "get_inputs_3": 33, "batch_size": 2})
    assert tuple(module.get_inputs()[0].shape) == (2, 3, 31, 33)
    derived = autosize.derive(p)
    assert derived.overrides["get_inputs_2"] < 224 and "get_inputs_1" not in derived.overrides
    # The fixed 96x3x11x11 filter is over the budget at any image size: the image stops
    # shrinking once it no longer helps, instead of collapsing to the kernel's size.
    assert derived.overrides["get_inputs_2"] >= 11 and derived.why["get_inputs_2"].count("->")
    shown = p.coder_source(derived.overrides)
    assert f"torch.rand(batch_size, 3, {derived.overrides['get_inputs_2']}, " in shown


GROUPED = """
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, hidden_size, num_groups):
        super(Model, self).__init__()
        self.norm = nn.GroupNorm(num_groups, hidden_size)

    def forward(self, x):
        return self.norm(x)


batch_size = 1024
hidden_size = 8192
num_groups = 512


def get_inputs():
    return [torch.randn(batch_size, hidden_size)]


def get_init_inputs():
    return [hidden_size, num_groups]
"""


def test_derived_sizes_leave_norm_groups_enough_channels(tmp_path):
    # At one channel a group, group norm outputs rounding noise: any kernel "fails" it.
    p = _write(tmp_path, GROUPED)
    derived = autosize.derive(p)
    main = derived.overrides
    assert main["hidden_size"] // 512 >= autosize.PER_GROUP, derived.why
    assert all(
        probe.run(p, v).group_size >= autosize.PER_GROUP for v in autosize.holdouts(p, main, 9)
    )
