"""Vision blocks as others write them, through capture and the builtin coder (CPU).

Each test is one class of model that used to stop on the model path:

- a depthwise conv (``groups=channels``): the meta probe accepted hold-out sizes whose weight no
  longer splits into the groups, and the reference then failed at them;
- a VGG-BN feature stack (four conv-BN layers): under the evaluator's ``sparse`` inputs zeroed
  running variances make the float32 reference itself miss the tolerance, so correct kernels
  failed; the capture now keeps only the distributions its reference is conditioned for;
- a timm-style squeeze-and-excitation (``view`` then ``expand_as``): ``expand_as`` is a view;
- a UNet decoder step (``F.interpolate`` by 2, ``torch.cat`` skip, conv): a resize template.
"""

from __future__ import annotations

import dataclasses

import pytest
from paths import REPO

from kernelloop.agents.builtin import module, plan, trace
from kernelloop.agents.builtin.templates import BY_NAME
from kernelloop.capture import capture, conditioning
from kernelloop.kernelbench import autosize, probe
from kernelloop.kernelbench.problem import DISTRIBUTIONS, load_file
from kernelloop.sandbox.evaluate import evaluate

BLOCKS = REPO / "tests" / "fixtures" / "models" / "vision_blocks.py"

DEPTHWISE = """
import torch
import torch.nn as nn

BATCH = 2
CHANNELS = 16
OUT_CHANNELS = 16
HEIGHT = 12
WIDTH = 12
EVAL_MODE = True


class Model(nn.Module):
    def forward(self, x, w):
        return torch.ops.aten.conv2d.default(x, w, None, [1, 1], [1, 1], [1, 1], 16)


def get_inputs():
    return [torch.randn(BATCH, CHANNELS, HEIGHT, WIDTH), torch.randn(OUT_CHANNELS, 1, 3, 3)]


def get_init_inputs():
    return []
"""


def _captured(tmp_path, factory: str, inputs: str | None = None):
    """The one problem of ``factory`` in the fixture file, loaded."""
    found = capture(
        f"{BLOCKS}:{factory}",
        inputs=f"{BLOCKS}:{inputs}" if inputs else None,
        out_dir=tmp_path / "cap",
    )
    assert len(found.subgraphs) == 1, [s.problem_id for s in found.subgraphs]
    return load_file(tmp_path / "cap" / found.subgraphs[0].file)


def _solve(problem):
    """The builtin coder's plan and default-config candidate, evaluated at the CPU size."""
    main = problem.overrides_for("auto")
    graph = trace.trace(problem, main)
    pl = plan.plan(graph)
    assert pl.ok, pl.describe()
    configs = [BY_NAME[s.template].default(s) for s in pl.segments]
    verdict = evaluate(problem, module.generate(problem, graph, pl, configs, main))
    assert verdict.accepted, (verdict.codes, [r.message for r in verdict.reasons][:2])
    return pl


def test_holdouts_keep_a_grouped_weight_divisible_by_its_groups(tmp_path):
    (tmp_path / "dw.py").write_text(DEPTHWISE)
    problem = load_file(tmp_path / "dw.py")
    with pytest.raises(probe.ProbeError, match="groups"):
        probe.run(problem, {"OUT_CHANNELS": 15})  # the meta conv alone lets this through
    for seed in range(4):
        for variant in autosize.holdouts(problem, {}, seed):
            assert variant["OUT_CHANNELS"] % 16 == 0, variant
            built = problem.instantiate(variant)
            built.Model()(*built.get_inputs())  # the CPU kernel takes it too
    # As a model writes it: a MobileNet block's depthwise conv, captured.
    block = _captured(tmp_path, "make_inverted_residual")
    main = block.overrides_for("auto")
    for seed in range(4):
        for variant in autosize.holdouts(block, main, seed):
            built = block.instantiate(variant)
            built.Model()(*built.get_inputs())


def test_ill_conditioned_input_distributions_are_left_out(tmp_path):
    problem = _captured(tmp_path, "make_vgg_bn_features")
    every = dataclasses.replace(problem, distributions=DISTRIBUTIONS)
    shares = conditioning.measure(every)
    dropped = set(DISTRIBUTIONS) - set(problem.distributions)
    assert dropped and problem.distributions[0] == "given"
    assert all(shares[d] > conditioning.SHARE for d in dropped), shares
    assert all(shares[d] <= conditioning.SHARE for d in problem.distributions[1:]), shares
    assert "conditioning.py" in problem.source  # the file says why
    # The tolerances stay the evaluator's.
    assert problem.tolerance == {"atol": 1e-4, "rtol": 1e-4}


def test_a_well_conditioned_problem_keeps_every_distribution(tmp_path):
    (tmp_path / "dw.py").write_text(DEPTHWISE)
    assert conditioning.settle(DEPTHWISE) == DEPTHWISE
    shares = conditioning.measure(load_file(tmp_path / "dw.py"))
    assert set(shares) == {"given", "scaled", "sparse"}
    assert max(shares.values()) < conditioning.SHARE


def test_a_squeeze_excitation_gate_expanded_as_its_input_is_solved(tmp_path):
    problem = _captured(tmp_path, "make_se_block")
    assert "expand_as" in problem.source
    pl = _solve(problem)
    assert any(s.template == "layout" and "expand_as" in s.ops[0] for s in pl.segments)


def test_a_unet_decoder_step_upsamples_with_the_resize_template(tmp_path):
    problem = _captured(tmp_path, "make_decoder", "decoder_inputs")
    assert "upsample_nearest2d" in problem.source
    pl = _solve(problem)
    assert "resize" in [s.template for s in pl.segments]
