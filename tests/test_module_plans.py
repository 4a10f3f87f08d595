"""The module ops' per-signature plans (modules/_eager.py): an eager call's argument checks,
normalisation and dispatch decision are made once per call signature and reused, with the same
results, errors and fallbacks as a call that makes them afresh (benchmarks/dispatch.py measures
what this saves)."""

from __future__ import annotations

import dataclasses
import importlib

import pytest
import torch
import torch.nn.functional as F

from kernelloop.library import dispatcher, store
from kernelloop.modules import conv as conv_mod
from kernelloop.modules import qgemm as qgemm_mod
from kernelloop.modules.attention import Attention, attention, reference_attention
from kernelloop.modules.conv import Conv2d, conv2d
from kernelloop.modules.qgemm import QuantLinear, qlinear, quantize_weight, reference_qlinear

# the package binds the name `attention` to the function, not the submodule
attention_mod = importlib.import_module("kernelloop.modules.attention")


@pytest.fixture(autouse=True)
def _reference_only(tmp_path, monkeypatch):
    # No library entries and no Triton: every decision is the PyTorch reference, which keeps
    # these tests about the plans rather than the kernels.
    empty = store.Library(tmp_path / "user", tmp_path / "shipped")
    monkeypatch.setattr(store.Library, "default", classmethod(lambda cls: empty))
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    dispatcher.clear_cache()
    yield
    dispatcher.clear_cache()


@pytest.fixture()
def decisions(monkeypatch):
    made = []
    choose = dispatcher._choose

    def spy(op, tensors, config):
        made.append(op)
        return choose(op, tensors, config)

    monkeypatch.setattr(dispatcher, "_choose", spy)
    # a decision is re-made after a second of the clock (another process may promote an entry):
    # the count is of decisions made for new signatures
    monkeypatch.setattr(dispatcher.time, "monotonic", lambda: 1000.0)
    return made


@pytest.fixture()
def conv_plans(monkeypatch):
    made = []
    normalise = conv_mod._normalise
    monkeypatch.setattr(conv_mod, "_normalise", lambda *a: made.append(1) or normalise(*a))
    return made


def test_conv2d_plans_and_decides_once_per_signature(decisions, conv_plans):
    x, w, b = torch.randn(1, 4, 6, 6), torch.randn(8, 4, 3, 3), torch.randn(8)
    with torch.no_grad():
        for _ in range(5):
            y = conv2d(x, w, b, padding=1, activation="relu")
            torch.testing.assert_close(y, F.relu(F.conv2d(x, w, b, padding=1)))
        assert (len(conv_plans), decisions) == (1, ["conv2d"])
        conv2d(torch.randn(1, 4, 6, 6), w, b, padding=1, activation="relu")  # other values
        assert (len(conv_plans), len(decisions)) == (1, 1)
        conv2d(x, w, b, padding=2, activation="relu")  # another config
        conv2d(x.contiguous(memory_format=torch.channels_last), w, b, padding=1, activation="relu")
        assert (len(conv_plans), len(decisions)) == (3, 3)
        y = conv2d(x, w, None, padding=1)  # no bias: the op's zeros, its own signature
        torch.testing.assert_close(y, F.conv2d(x, w, None, padding=1))
        assert (len(conv_plans), len(decisions)) == (4, 4)
        # the filter's layout reaches no decision (the kernels read its strides per call)
        w_nhwc = w.contiguous(memory_format=torch.channels_last)
        y = conv2d(x, w_nhwc, b, padding=1, activation="relu")
        torch.testing.assert_close(y, F.relu(F.conv2d(x, w, b, padding=1)))
        assert (len(conv_plans), len(decisions)) == (4, 4)


def test_conv2d_module_reuses_its_plan_and_follows_its_parameters(decisions, conv_plans):
    torch.manual_seed(0)
    ref = torch.nn.Conv2d(4, 6, 3, padding=1)
    mod = Conv2d.from_conv(ref, activation="silu")
    x = torch.randn(2, 4, 5, 5)
    with torch.no_grad():
        for _ in range(3):
            torch.testing.assert_close(mod(x), F.silu(ref(x)))
        ref.weight.mul_(2)  # in place: the plan holds no tensor
        torch.testing.assert_close(mod(x), F.silu(ref(x)))
        assert (len(conv_plans), len(decisions)) == (1, 1)
        mod.weight = torch.nn.Parameter(torch.randn(6, 4, 1, 1))  # a new shape: a new plan
        torch.testing.assert_close(mod(x), F.silu(F.conv2d(x, mod.weight, mod.bias, padding=1)))
        assert len(conv_plans) == 2


def test_conv2d_arguments_no_plan_may_serve_are_checked_every_call(conv_plans):
    x, w = torch.randn(1, 4, 6, 6), torch.randn(8, 4, 3, 3)
    with torch.no_grad():
        conv2d(x, w, padding=1)
        with pytest.raises(TypeError):  # equal to 1, but not an int or a pair: as before
            conv2d(x, w, padding=1.0)
        for _ in range(2):  # lists are not hashable: normalised afresh, same result
            y = conv2d(x, w, stride=[1, 1], padding=[1, 1])
        torch.testing.assert_close(y, F.conv2d(x, w, padding=1))
        with pytest.raises(ValueError, match="activation"):
            conv2d(x, w, padding=1, activation="tanh")
    assert len(conv_plans) == 1 + 1 + 2 + 1  # a plan, a raise, two list calls, a raise


def test_conv2d_fallback_is_planned_and_still_says_why(decisions, capsys, monkeypatch):
    from kernelloop import settings

    monkeypatch.setattr(conv_mod, "_said", set())  # each reason is printed once a process
    x, w = torch.randn(1, 8, 6, 6), torch.randn(6, 4, 3, 3)
    with settings.override(dispatch_log=True), torch.no_grad():
        for _ in range(3):
            y = conv2d(x, w, None, padding=1, groups=2)
    torch.testing.assert_close(y, F.conv2d(x, w, None, padding=1, groups=2))
    assert "groups=2" in capsys.readouterr().err and decisions == []


def test_autograd_after_an_eager_plan_still_goes_through_the_op(monkeypatch):
    x, w, b = torch.randn(1, 4, 6, 6), torch.randn(4, 4, 3, 3), torch.randn(4)
    with torch.no_grad():
        conv2d(x, w, b, padding=1)
    ops = []
    op = conv_mod._conv2d_op
    monkeypatch.setattr(conv_mod, "_conv2d_op", lambda *a: ops.append(1) or op(*a))
    wg = w.clone().requires_grad_()
    conv2d(x, wg, b, padding=1).sum().backward()
    assert ops == [1] and wg.grad is not None


def test_attention_plans_once_and_keeps_its_errors(decisions, monkeypatch):
    checks = []
    check = attention_mod.check_inputs
    monkeypatch.setattr(attention_mod, "check_inputs", lambda *a: checks.append(1) or check(*a))
    q, k, v = (torch.randn(2, 4, 8, 16) for _ in range(3))
    with torch.no_grad():
        for _ in range(4):
            torch.testing.assert_close(
                attention(q, k, v, causal=True), reference_attention(q, k, v, True)
            )
        assert (len(checks), decisions) == (1, ["attention"])
        qt = q.transpose(2, 3).contiguous().transpose(2, 3)  # strided: copied, its own plan
        torch.testing.assert_close(attention(qt, k, v), reference_attention(q, k, v))
        assert (len(checks), len(decisions)) == (2, 2)  # its own plan, so its own slot
        with pytest.raises(ValueError, match="multiple of K/V heads"):
            attention(torch.randn(2, 3, 8, 16), k[:, :2], v[:, :2])
        with pytest.raises(ValueError, match="multiple of K/V heads"):  # errors are not cached
            attention(torch.randn(2, 3, 8, 16), k[:, :2], v[:, :2])
        layer = Attention(32, 4, num_kv_heads=2, causal=True).eval()
        x = torch.randn(2, 8, 32)
        heads = [
            proj(x).view(2, 8, n, 8).transpose(1, 2)
            for proj, n in ((layer.q_proj, 4), (layer.k_proj, 2), (layer.v_proj, 2))
        ]
        out = reference_attention(*heads, True).transpose(1, 2).reshape(2, 8, 32)
        for _ in range(2):
            torch.testing.assert_close(layer(x), layer.o_proj(out))


def test_qlinear_plans_once_for_function_and_module(decisions):
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 32)
    module = QuantLinear.from_linear(linear, bits=4, group_size=32)
    qw = quantize_weight(linear.weight, 4, 32)
    x3 = torch.randn(2, 3, 64)
    with torch.no_grad():
        for x in (x3, x3.reshape(6, 64)):  # 3-D is flattened for the op, 2-D is used as is
            expected = reference_qlinear(x.reshape(-1, 64), qw, module.bias)
            for _ in range(3):
                torch.testing.assert_close(qlinear(x, qw, module.bias).reshape(-1, 32), expected)
                torch.testing.assert_close(module(x).reshape(-1, 32), expected)
    assert decisions == ["qgemm.w4a16"] * 2
    # the weight's strides reach no decision: a strided copy of the scales is served by the plan
    scales = qw.scales.t().contiguous().t()
    strided = dataclasses.replace(qw, scales=scales)
    with torch.no_grad():
        y = qlinear(x3, strided, module.bias).reshape(-1, 32)
    torch.testing.assert_close(y, reference_qlinear(x3.reshape(-1, 64), qw, module.bias))
    assert not scales.is_contiguous() and decisions == ["qgemm.w4a16"] * 2
    with pytest.raises(ValueError, match="features"):
        qlinear(torch.randn(2, 48), qw)
    with pytest.raises(ValueError, match="act_bits=8 needs bits=8"):
        qlinear(x3, qw, act_bits=8)


def test_clear_cache_empties_the_module_plans():
    x, w = torch.randn(1, 4, 6, 6), torch.randn(8, 4, 3, 3)
    with torch.no_grad():
        conv2d(x, w)
        qlinear(torch.randn(2, 64), quantize_weight(torch.randn(32, 64), 8, 64))
    assert conv_mod._plans and qgemm_mod._plans
    dispatcher.clear_cache()
    assert not conv_mod._plans and not qgemm_mod._plans
