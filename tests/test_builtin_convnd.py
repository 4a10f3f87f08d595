"""The builtin conv and transposed-conv templates (every rank, groups, geometry): candidates
accepted by the real evaluator at their sizes and hold-out sizes, and what the templates fuse
or refuse."""

from __future__ import annotations

import pytest
from builtin_support import (
    assert_accepted,
    generate,
    kernel_templates,
    match_all,
    replace_op,
    traced_text,
)

from kernelloop.agents.builtin import plan
from kernelloop.agents.builtin.templates.convnd import Conv, ConvTranspose

# PyTorch's own note on the depthwise conv's "same" padding of an even kernel.
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")

_PROBLEM = """
import torch
import torch.nn as nn
import torch.nn.functional as F

{constants}
{dtype}

class Model(nn.Module):
    def __init__(self, {params}):
        super().__init__()
{init}

    def forward(self, x):
        return {forward}


def get_inputs():
    return [torch.randn({shape})]


def get_init_inputs():
    return [{params}]
"""


def _text(constants, params, init, forward, shape, dtype=""):
    body = "\n".join("        " + line for line in init)
    return _PROBLEM.format(
        constants=constants, params=params, init=body, forward=forward, shape=shape, dtype=dtype
    )


def _accepted(tmp_path, text: str, templates: list[str], override: dict | None = None):
    problem, overrides, graph = traced_text(tmp_path, text)
    pl, source = generate(problem, overrides, graph, override)
    assert kernel_templates(pl) == templates, pl.describe()
    assert_accepted(problem, source)
    return pl


# conv1d: strided, dilated, padded, with bias; the hold-out also changes the stride (a
# constructor argument the candidate must read from the module, not the trace).
_CONV1D = _text(
    'n = 2\nc = 3\nk = 8\nlength = 64\nstride = 2\nSIZES = {"cpu": {}}\n'
    'HOLDOUT = [{"n": 1, "c": 5, "k": 6, "length": 37, "stride": 3}]',
    "c, k, stride",
    ["self.conv = nn.Conv1d(c, k, 5, stride=stride, padding=2, dilation=2)"],
    "self.conv(x)",
    "n, c, length",
)

# conv3d, asymmetric kernel and padding, bfloat16, with bias, relu and a scale (the chain).
_CONV3D = _text(
    'n = 2\nc = 3\nk = 16\nd = 8\nSIZES = {"cpu": {}}\n'
    'HOLDOUT = [{"n": 1, "c": 2, "k": 5, "d": 7}]',
    "c, k",
    ["self.conv = nn.Conv3d(c, k, (3, 2, 3), padding=(1, 0, 2))", "self.scale = 1.5"],
    "torch.relu(self.conv(x)) * self.scale",
    "n, c, d, d + 1, d - 1",
    dtype='DTYPE = "bfloat16"',
)

# A grouped conv2d (two groups of 8: the dot path), strided, dilated, asymmetric, then a
# depthwise one (the direct path) with "same" padding of an even kernel (one more column on
# the right than on the left), whose bias add, sigmoid and scale fuse.
_GROUPED = _text(
    'n = 2\nc = 4\nh = 16\nw = 12\nSIZES = {"cpu": {}}\nHOLDOUT = [{"n": 1, "h": 11, "w": 9}]',
    "c",
    [
        "self.grouped = nn.Conv2d(c, 16, (3, 5), stride=(2, 1), padding=(1, 2), dilation=(2, 1),"
        " groups=2)",
        "self.depthwise = nn.Conv2d(16, 16, (1, 4), padding='same', groups=16, bias=False)",
        "self.bias = nn.Parameter(torch.randn(16, 1, 1))",
    ],
    "torch.sigmoid(self.depthwise(torch.tanh(self.grouped(x))) + self.bias) * 2.0",
    "n, c, h, w",
)


def _transposed(rank: int, holdout: str) -> str:
    module = f"nn.ConvTranspose{rank}d"
    geometry = {
        1: "5, stride=2, padding=1, output_padding=1, dilation=2, groups=2",
        2: "(3, 4), stride=(2, 3), padding=(1, 2), output_padding=(1, 2), dilation=(2, 1), "
        "groups=2",
        3: "(3, 2, 3), stride=(2, 1, 2), padding=(1, 0, 1), output_padding=(1, 0, 0)",
    }[rank]
    spatial = {1: "16", 2: "6, 7", 3: "4, 5, 3"}[rank]
    return _text(
        f'n = 2\nc = 4\nk = 8\nSIZES = {{"cpu": {{}}}}\nHOLDOUT = [{holdout}]',
        "c, k",
        [f"self.up = {module}(c, k, {geometry})"],
        "F.gelu(self.up(x))",
        f"n, c, {spatial}",
    )


def test_conv1d_with_hold_out_stride_is_accepted(tmp_path):
    _accepted(tmp_path, _CONV1D, ["conv"])


def test_conv3d_bias_relu_scale_chain_is_accepted(tmp_path):
    pl = _accepted(tmp_path, _CONV3D, ["conv"])
    assert pl.segments[0].ops == ["conv3d", "relu", "mul"]


@pytest.mark.parametrize("dot", [None, False])  # the default, then the direct path everywhere
def test_grouped_then_depthwise_conv2d_is_accepted(tmp_path, dot):
    override = None if dot is None else {"DOT": dot}
    pl = _accepted(tmp_path, _GROUPED, ["conv", "conv"], override)
    grouped, depthwise = pl.segments
    assert grouped.ops == ["conv2d", "tanh"]
    assert depthwise.ops == ["conv2d_1", "add", "sigmoid", "mul"]
    assert depthwise.spec["geometry"]["padding"] == "same"
    if dot is None:
        assert Conv().default(grouped)["DOT"] and not Conv().default(depthwise)["DOT"]


@pytest.mark.parametrize(
    "rank,holdout",
    [
        (1, '{"n": 1, "c": 6, "k": 4}'),
        (2, '{"n": 1, "c": 2, "k": 6}'),
        (3, '{"n": 1, "c": 3, "k": 5}'),
    ],
)
def test_transposed_convs_are_accepted(tmp_path, rank, holdout):
    pl = _accepted(tmp_path, _transposed(rank, holdout), ["conv_transpose"])
    assert pl.segments[0].ops == [f"conv_transpose{rank}d", "gelu"]


def test_eval_batch_norm_is_fused_and_training_batch_norm_is_not(tmp_path):
    text = _text(
        'n = 2\nc = 3\nk = 8\nlength = 32\nSIZES = {"cpu": {}}',
        "c, k",
        [
            "self.conv = nn.Conv1d(c, k, 3, groups=1, bias=False)",
            "self.register_buffer('mean', torch.randn(k))",
            "self.register_buffer('var', torch.rand(k) + 0.5)",
        ],
        "torch.relu(F.batch_norm(self.conv(x), self.mean, self.var, training=False))",
        "n, c, length",
    )
    problem, overrides, graph = traced_text(tmp_path, text)
    (seg,) = match_all(Conv(), graph)
    assert seg.ops == ["conv1d", "batch_norm", "relu"]
    assert_accepted(problem, generate(problem, overrides, graph)[1])
    bn = graph.ops[graph.index("batch_norm")]
    args = list(bn.args)
    args[5] = True  # training: batch statistics, not a per-channel affine
    (seg,) = match_all(Conv(), replace_op(graph, "batch_norm", args=tuple(args)))
    assert seg.ops == ["conv1d"]


def test_templates_split_the_vocabulary(tmp_path):
    # groups=1 conv2d stays with the tensor-core conv2d template; the rest is conv's.
    text = _text(
        'n = 2\nc = 3\nh = 8\nSIZES = {"cpu": {}}',
        "c",
        [
            "self.a = nn.Conv2d(c, 8, 3)",
            "self.b = nn.ConvTranspose2d(8, 8, 2, stride=2)",
            "self.c = nn.Conv2d(8, 8, 3, groups=8)",
        ],
        "self.c(self.b(self.a(x)))",
        "n, c, h, h",
    )
    graph = traced_text(tmp_path, text)[2]
    pl = plan.plan(graph)
    assert kernel_templates(pl) == ["conv2d", "conv_transpose", "conv"]
    assert plan.main_segment(pl.segments) == 1  # the largest output of the heaviest kind
    assert [s.anchor for s in match_all(ConvTranspose(), graph)] == ["conv_transpose2d"]
    assert [s.anchor for s in match_all(Conv(), graph)] == ["conv2d", "conv2d_1"]


def test_conv_refuses_unbatched_input(tmp_path):
    text = _text(
        'c = 3\nlength = 16\nSIZES = {"cpu": {}}',
        "c",
        ["self.conv = nn.Conv1d(c, 4, 3)"],
        "self.conv(x)",
        "c, length",
    )
    assert not match_all(Conv(), traced_text(tmp_path, text)[2])


@pytest.mark.slow
def test_candidates_compile_for_sm90(tmp_path, monkeypatch):
    # The interpreter never runs Triton's compiler: record each distinct launch of the
    # candidates (dot and direct paths, conv and transposed, bf16) and compile it for an H100.
    import importlib.util
    import sys

    import torch
    from test_compile_sm90 import _as_on_gpu

    from kernelloop.feedback.compile_check import compile_all, record_launches
    from kernelloop.kernelbench import instance

    if torch.cuda.is_available():
        pytest.skip("on a GPU the acceptance tests compile the kernels themselves")
    monkeypatch.setenv("TRITON_INTERPRET", "1")  # read when the candidate's kernels are defined
    launches = []
    for i, text in enumerate([_CONV1D, _CONV3D, _GROUPED, _transposed(2, "{}")]):
        folder = tmp_path / str(i)
        folder.mkdir()
        problem, overrides, graph = traced_text(folder, text)
        path = folder / f"kl_convnd_candidate_{i}.py"
        path.write_text(generate(problem, overrides, graph)[1])
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module  # Triton reads the kernels' source through inspect
        try:
            spec.loader.exec_module(module)
            reference = problem.instantiate(overrides)
            inputs = instance.make_inputs(reference, 0, "given", problem.dtype)
            model = module.ModelNew(*instance.init_inputs(reference))
            model = model.to(dtype=instance.torch_dtype(problem.dtype))
            with record_launches() as found, torch.no_grad():
                model(*inputs)
            launches += found
        finally:
            del sys.modules[path.stem]
    results = compile_all(_as_on_gpu(launches), arch=90)
    assert len(results) == 5
    failed = [f"{name}: {message}" for name, ok, message in results if not ok]
    assert not failed, "\n\n".join(failed)
