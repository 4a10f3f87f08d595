"""kernelloop.modules.conv: the seed kernel against PyTorch, the custom op, the module, the op's
library convention. On a CPU the Triton kernel runs under the interpreter; on a GPU the same
tests run it compiled."""

import os

import torch

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
if DEVICE == "cpu":  # must precede the first import of triton (kernelloop.modules imports it)
    os.environ["TRITON_INTERPRET"] = "1"

import importlib.util  # noqa: E402

import pytest  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from paths import REPO  # noqa: E402

from kernelloop import settings  # noqa: E402
from kernelloop.kernels import conv as seed_kernel  # noqa: E402
from kernelloop.library import explain  # noqa: E402
from kernelloop.modules.conv import SPEC, Conv2d, conv2d, reference_conv2d  # noqa: E402

PROBLEM = "kernelbench/problems/modules/04_conv2d_bias_relu_nhwc.py"
SOLUTION = "kernelbench/problems/modules/solutions/04_conv2d_bias_relu_nhwc.py"
TOL = {
    torch.float32: {"atol": 1e-4, "rtol": 1e-4},
    torch.float16: {"atol": 1e-2, "rtol": 1e-2},
    torch.bfloat16: {"atol": 2e-2, "rtol": 2e-2},  # one bf16 ulp at |y| ~ 2-4 is 1.6e-2
}


@pytest.fixture(autouse=True)
def _empty_library(tmp_path):
    # No user library entries: every call here must reach the seed kernel.
    with settings.override(library_dir=tmp_path / "library"):
        yield


def _inputs(dtype, nhwc, c_in=8, c_out=16, k=3, n=1, h=8, w=7, bias=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c_in, h, w, generator=g)
    wt = torch.randn(c_out, c_in, k, k, generator=g) / (c_in * k * k) ** 0.5
    b = torch.randn(c_out, generator=g) if bias else None
    x = x.to(DEVICE, dtype)
    if nhwc:
        x = x.contiguous(memory_format=torch.channels_last)
    b = b.to(DEVICE, dtype) if bias else None
    return x, wt.to(DEVICE, dtype), b


def _expected(x, w, b, stride, padding, dilation, activation):
    # float32 math, rounded once to the input dtype: what a fp32-accumulating kernel should give
    b32 = None if b is None else b.float()
    y = reference_conv2d(x.float(), w.float(), b32, stride, padding, dilation, activation)
    return y.to(x.dtype)


def _is_nhwc(t):
    return t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous()


# (dtype, nhwc, kernel, stride, padding, dilation, bias, activation): each dimension's values
# appear in several rows, so a fault in one shows up without the full cross product.
CASES = [
    (torch.float32, False, 3, 1, 1, 1, True, "relu"),
    (torch.float32, True, 3, 2, 1, 1, False, "gelu"),
    (torch.float32, True, 1, 1, 0, 1, True, None),
    (torch.float32, False, 3, 1, 2, 2, True, "silu"),
    (torch.float16, True, 3, 1, 1, 1, True, "relu"),
    (torch.float16, False, 1, 2, 0, 1, True, "gelu"),
    (torch.float16, True, 3, 1, 0, 2, False, "silu"),
    (torch.float16, False, 3, 2, 1, 1, True, None),
    (torch.bfloat16, True, 3, 1, 1, 1, True, "silu"),
    (torch.bfloat16, False, 3, 2, 0, 1, False, "relu"),
    (torch.bfloat16, True, 1, 1, 0, 1, True, "gelu"),
]


@pytest.mark.parametrize("dtype,nhwc,k,stride,pad,dil,bias,act", CASES)
def test_seed_kernel_matches_reference(dtype, nhwc, k, stride, pad, dil, bias, act):
    # 20 input channels: two BLOCK_K chunks, the second one partial (masked).
    x, w, b = _inputs(dtype, nhwc, c_in=20, c_out=24, k=k, bias=bias)
    cfg = dict(stride=(stride, stride), padding=(pad, pad), dilation=(dil, dil), activation=act)
    y = seed_kernel.conv2d(x, w, b, **cfg)
    ref = _expected(x, w, b, **cfg)
    assert y.shape == ref.shape and y.dtype == dtype
    assert _is_nhwc(y) == nhwc, "the output keeps the input's memory format"
    torch.testing.assert_close(y, ref, **TOL[dtype])


def test_seed_kernel_tiles_and_batches():
    # Several M and N tiles, more than one image, odd sizes, rectangular stride and padding;
    # C_in a multiple of BLOCK_K (the unmasked-K path), from NCHW x (copied to channels-last).
    x, w, b = _inputs(torch.float32, False, c_in=32, c_out=40, n=3, h=9, w=11)
    cfg = dict(stride=(2, 1), padding=(1, 0), dilation=(1, 1), activation="relu")
    tile = {"BLOCK_M": 16, "BLOCK_N": 16, "BLOCK_K": 16, "GROUP_M": 2, "num_warps": 4}
    y = seed_kernel.conv2d(x, w, b, **cfg, config={**tile, "num_stages": 1})
    torch.testing.assert_close(y, _expected(x, w, b, **cfg), **TOL[torch.float32])


@pytest.mark.parametrize("nhwc", [False, True])
def test_conv2d_dispatches_to_the_seed_kernel(nhwc):
    x, w, b = _inputs(torch.float16, nhwc)
    cfg = dict(stride=(1, 1), padding=(1, 1), dilation=(1, 1), activation="relu")
    why = explain("conv2d", x, w, b, **cfg)
    assert why.startswith("seed kernel"), why
    layout = "nhwc" if nhwc else "nchw"
    assert f"k3x3-s1x1-p1x1-d1x1-c8-o16-hw64-{layout}-relu" in why
    y = conv2d(x, w, b, stride=1, padding=1, activation="relu")
    assert _is_nhwc(y) == nhwc
    torch.testing.assert_close(y, _expected(x, w, b, **cfg), **TOL[torch.float16])


def test_conv2d_without_bias_and_string_padding():
    x, w, _ = _inputs(torch.float32, False, bias=False)
    y = conv2d(x, w, None, padding="same", dilation=2, activation="silu")
    ref = F.silu(F.conv2d(x, w, None, padding="same", dilation=2))
    torch.testing.assert_close(y, ref, **TOL[torch.float32])


def test_unsupported_calls_fall_back_to_pytorch_and_say_why(capsys):
    x, _, _ = _inputs(torch.float32, False)
    w = torch.randn(6, 4, 3, 3, device=DEVICE)  # groups=2: 8 channels in two groups of 4
    with settings.override(dispatch_log=True):
        y = conv2d(x, w, None, padding=1, activation="relu", groups=2)
    torch.testing.assert_close(y, F.relu(F.conv2d(x, w, None, padding=1, groups=2)))
    assert "groups=2" in capsys.readouterr().err
    with pytest.raises(ValueError, match="activation"):
        conv2d(x, w, activation="tanh")


def test_from_conv_matches_nn_conv2d_and_shares_parameters():
    torch.manual_seed(0)
    ref = nn.Conv2d(8, 12, 3, stride=2, padding=1).to(DEVICE)
    mod = Conv2d.from_conv(ref, activation="gelu")
    assert isinstance(mod, nn.Conv2d) and mod.weight is ref.weight and mod.bias is ref.bias
    assert mod.state_dict().keys() == ref.state_dict().keys()
    x, _, _ = _inputs(torch.float32, True)
    with torch.no_grad():
        y, expected = mod(x), F.gelu(ref(x))
    assert _is_nhwc(y)
    torch.testing.assert_close(y, expected, **TOL[torch.float32])
    plain = Conv2d(8, 12, 1, bias=False).to(DEVICE)
    torch.testing.assert_close(plain(x), F.conv2d(x, plain.weight), **TOL[torch.float32])


def test_backward_matches_pytorch():
    torch.manual_seed(0)
    ref = nn.Conv2d(4, 6, 3, padding=1).to(DEVICE)
    mod = Conv2d.from_conv(ref, activation="silu")
    x = torch.randn(1, 4, 5, 5, device=DEVICE)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    mod(x1).square().sum().backward()
    got = (x1.grad, ref.weight.grad.clone(), ref.bias.grad.clone())
    ref.zero_grad()
    F.silu(ref(x2)).square().sum().backward()
    for a, e in zip(got, (x2.grad, ref.weight.grad, ref.bias.grad), strict=True):
        torch.testing.assert_close(a, e, atol=1e-4, rtol=1e-4)


def test_custom_op_under_torch_compile():
    x, w, b = _inputs(torch.float32, True)

    def f(x, w, b):
        return conv2d(x, w, b, stride=1, padding=1, activation="relu") * 2.0

    compiled = torch.compile(f, backend="aot_eager", fullgraph=True)
    y = compiled(x, w, b)
    assert _is_nhwc(y), "register_fake promised x's memory format"
    expected = 2.0 * _expected(x, w, b, (1, 1), (1, 1), (1, 1), "relu")
    torch.testing.assert_close(y, expected, **TOL[torch.float32])


def _load(relpath, name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, relpath))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # trusted bundled files (the dispatcher does the same)
    return module


def test_bundled_problem_and_solution_follow_the_op_convention():
    # A library entry is the solution's ModelNew built with SPEC.init_args(config) and called
    # with the op's tensors (x, w, bias); the problem's Model is the same op in PyTorch.
    problem, solution = _load(PROBLEM, "conv_problem"), _load(SOLUTION, "conv_solution")
    cfg = {"stride": (2, 2), "padding": (1, 1), "dilation": (1, 1), "activation": "relu"}
    assert SPEC.config_from_init(SPEC.init_args(cfg)) == cfg
    assert SPEC.config_from_init(problem.get_init_inputs())["padding"] == (1, 1)
    for c_in, c_out in ((5, 7), (16, 8)):  # a partial and an exact channel chunk
        x, w, b = _inputs(torch.float16, True, c_in=c_in, c_out=c_out, h=9, w=13)
        expected = _expected(x, w, b, **cfg)
        with torch.no_grad():
            reference = problem.Model(*SPEC.init_args(cfg))(x, w, b)
            got = solution.ModelNew(*SPEC.init_args(cfg)).to(DEVICE)(x, w, b)
        torch.testing.assert_close(reference, expected)
        torch.testing.assert_close(got, expected, **TOL[torch.float16])


def test_eager_inference_skips_the_custom_op_and_autograd_keeps_it(monkeypatch):
    from kernelloop.modules import _eager
    from kernelloop.modules import conv as conv_mod

    x, w, b = torch.randn(1, 4, 6, 6), torch.randn(4, 4, 3, 3), torch.randn(4)
    direct = []
    impl = conv_mod._conv2d_impl
    monkeypatch.setattr(conv_mod, "_conv2d_impl", lambda *a: direct.append(1) or impl(*a))
    with torch.no_grad():
        plain = conv_mod.conv2d(x, w, b, padding=1)
    assert direct == [1]
    torch.testing.assert_close(plain, F.conv2d(x, w, b, padding=1), atol=1e-4, rtol=1e-4)
    # a gradient needs the op's registered backward
    wg = w.clone().requires_grad_()
    out = conv_mod.conv2d(x, wg, b, padding=1)
    assert direct == [1] and out.requires_grad
    out.sum().backward()
    assert wg.grad is not None and wg.grad.shape == w.shape
    # tracing (torch.compile) and tensor subclasses (fake tensors) go through the op as well
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    assert not _eager.bypass_custom_op(x)
    monkeypatch.undo()
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode() as mode:
        fake = mode.from_tensor(x)
    assert _eager.bypass_custom_op(x, None) and not _eager.bypass_custom_op(fake)
