"""`kernelloop capture`: a user's model in, ranked functional problems and capture.json out.

The property patching relies on is tested directly: each problem's reference, fed a site's real
arguments and the module's real parameters and buffers (as capture.json maps them), returns what
the module returned.
"""

from __future__ import annotations

import json
import shutil
import textwrap

import pytest
import torch
from typer.testing import CliRunner

from kernelloop.capture import CaptureError, TargetError, capture
from kernelloop.capture import target as capture_target
from kernelloop.capture.manifest import Capture
from kernelloop.cli import app
from kernelloop.kernelbench import autosize, hygiene, loader

BLOCK = "examples/models/tiny_llama.py:make_block"
STACK = "examples/models/tiny_llama.py:make_stack"
CNN = "examples/models/tiny_cnn.py:make_cnn"
LLAMA7B = "examples/models/tiny_llama.py:make_llama7b_block"
LLAMA7B_INPUTS = "examples/models/tiny_llama.py:llama7b_inputs"


@pytest.fixture(scope="module", autouse=True)
def _in_repo(repo):
    import os

    here = os.getcwd()
    os.chdir(repo)  # the specs are relative to the repository, as a user types them
    yield
    os.chdir(here)


@pytest.fixture(scope="module")
def block(tmp_path_factory):
    out = tmp_path_factory.mktemp("block")
    return capture(BLOCK, out_dir=out), out


@pytest.fixture(scope="module")
def cnn(tmp_path_factory):
    out = tmp_path_factory.mktemp("cnn")
    return capture(CNN, out_dir=out), out


def _site_calls(model, modules):
    """Each named module's (args, output) per call, from one forward of ``model``."""
    seen: dict[str, list] = {m: [] for m in modules}
    handles = []
    for name in modules:
        sub = model.get_submodule(name)

        def hook(mod, args, out, name=name):
            seen[name].append((args, out))

        handles.append(sub.register_forward_hook(hook))
    with torch.no_grad():
        model(*capture_target.load_inputs(None, _spec_of(model)))
    for h in handles:
        h.remove()
    return seen


def _spec_of(model):
    return CNN if type(model).__name__ == "TinyCNN" else BLOCK


def test_block_splits_into_norm_attention_and_mlp(block):
    result, out = block
    kinds = {s.problem_id: s.kind for s in result.subgraphs}
    assert kinds == {"01_matmul_mlp": "matmul", "02_attention_attn": "attention",
                     "03_norm_attn_norm": "norm"}  # fmt: skip
    norm = result.subgraphs[2]
    assert [s.module for s in norm.sites] == ["attn_norm", "mlp_norm"]  # identical: one problem
    attn = result.subgraphs[1]
    assert attn.ops == ("linear", "linear", "linear", "scaled_dot_product_attention", "linear")
    assert [(i.name, i.kind, i.index, i.target) for i in attn.inputs] == [
        ("x", "arg", 0, None),
        ("q_weight", "param", None, "q.weight"),
        ("k_weight", "param", None, "k.weight"),
        ("v_weight", "param", None, "v.weight"),
        ("o_weight", "param", None, "o.weight"),
    ]
    # The residual adds sit in the block's own forward, outside every unit.
    (residual,) = result.uncovered
    assert residual.module == "" and residual.ops == ("add", "add")
    assert "5 and 40" in residual.why
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{s.problem_id}.py" for s in result.subgraphs] + ["capture.json"]
    )
    shares = sum(s.share for s in result.subgraphs)
    assert 0.5 < shares < 1.0  # the adds hold the rest
    units = sum(s.estimated_ms * len(s.sites) for s in result.subgraphs)
    assert units + residual.estimated_ms == pytest.approx(result.total_estimated_ms)
    times = [s.estimated_ms * len(s.sites) for s in result.subgraphs]
    assert times == sorted(times, reverse=True)


def test_capture_json_round_trips(block, cnn):
    for result, out in (block, cnn):
        again = Capture.load(out)
        assert again == result
        assert Capture.from_dict(json.loads(result.to_json())) == result


def test_a_capture_json_from_before_keywords_still_loads(block):
    result, _ = block
    old = json.loads(result.to_json())
    for sub in old["subgraphs"]:  # as kernelloop wrote it before keyword arguments were captured
        del sub["keyword_constants"], sub["keyword_tensors"], sub["none_outputs"]
    assert Capture.from_dict(old) == result  # the defaults: no keywords, no None returned


@pytest.mark.parametrize("which", ["block", "cnn"])
def test_problem_equals_the_module_on_its_real_weights(which, request):
    result, out = request.getfixturevalue(which)
    model = capture_target.load_factory(result.model)().eval()
    sites = {site.module for s in result.subgraphs for site in s.sites}
    calls = _site_calls(model, sites)
    state_of = {}
    for sub in result.subgraphs:
        problem = loader.load(out / sub.file)[0]
        reference = problem.instantiate().Model()
        for site in sub.sites:
            args, expected = calls[site.module][site.call]
            state = dict(model.get_submodule(site.module).state_dict())
            state_of[site.module] = state
            inputs = [args[i.index] if i.kind == "arg" else state[i.target] for i in sub.inputs]
            with torch.no_grad():
                got = reference(*inputs)
            torch.testing.assert_close(got, expected, msg=f"{sub.problem_id} at {site.module}")


@pytest.mark.parametrize("which", ["block", "cnn"])
def test_problems_pass_the_hygiene_check(which, request):
    result, out = request.getfixturevalue(which)
    found = loader.load(out)
    assert [p.id for p in found] == [s.problem_id for s in result.subgraphs]
    for p, sub in zip(found, result.subgraphs, strict=True):
        assert p.eval_mode and p.real_size and p.dtype == "float32" and not p.sizes
        # x4 on every input would scale attention logits 256x: checked on the other two.
        want = ("given", "sparse") if sub.kind == "attention" else ("given", "scaled", "sparse")
        assert p.distributions == want
        report = hygiene.check(p)
        failed = {k: c.detail for k, c in report.checks.items() if not c.passed}
        assert not failed, (p.id, failed)
        # The examples are tiny on purpose (fast on a CPU): at their real size every one is
        # launch-overhead territory on a GPU. REAL_SIZE makes that a report, not a refusal.
        assert "the model's real size" in report.checks["gpu_size_not_tiny"].detail
        # Every input, parameters and buffers included, was checked to move the output.
        assert sum(k.startswith("depends_on_input_") for k in report.checks) == len(sub.inputs)


def test_identical_layers_share_one_problem(tmp_path):
    result = capture(STACK, out_dir=tmp_path)
    by_kind = {s.kind: s for s in result.subgraphs}
    assert [s.module for s in by_kind["norm"].sites] == [
        "layers.0.attn_norm", "layers.0.mlp_norm", "layers.1.attn_norm", "layers.1.mlp_norm",
    ]  # fmt: skip
    assert [s.module for s in by_kind["attention"].sites] == ["layers.0.attn", "layers.1.attn"]
    assert [s.module for s in by_kind["matmul"].sites] == ["layers.0.mlp", "layers.1.mlp"]
    assert len(result.subgraphs) == 3
    assert {u.module for u in result.uncovered} == {"layers.0", "layers.1"}


def test_top_keeps_the_largest_and_lists_the_rest(tmp_path, cnn):
    full, _ = cnn
    result = capture(CNN, out_dir=tmp_path, top=2)
    assert [s.problem_id for s in result.subgraphs] == [s.problem_id for s in full.subgraphs[:2]]
    dropped = [u for u in result.uncovered if "below --top 2" in u.why]
    assert len(dropped) == len(full.subgraphs) - 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["capture.json", *(s.file for s in result.subgraphs)]
    )
    assert result.total_estimated_ms == pytest.approx(full.total_estimated_ms)


def test_cnn_blocks_are_units_and_identical_blocks_share(cnn):
    result, _ = cnn
    sites = {s.problem_id: [x.module for x in s.sites] for s in result.subgraphs}
    assert sites["01_conv_features_1"] == ["features.1", "features.2"]
    assert sites["02_conv_features_4"] == ["features.4", "features.5"]
    conv = result.subgraphs[0]
    assert conv.ops == ("conv2d", "batch_norm", "relu")
    # nn.Sequential calls its argument "input": a builtin's name, which the static gate would
    # read as input() in a candidate that copies it.
    assert conv.inputs[0].name == "x" and conv.inputs[0].kind == "arg"
    # num_batches_tracked is not read in eval mode: it is no input of the problem.
    assert [i.target for i in conv.inputs if i.kind == "buffer"] == [
        "1.running_mean", "1.running_var",
    ]  # fmt: skip
    assert {s.kind for s in result.subgraphs} == {"conv", "reduction", "matmul"}


def test_meta_capture_of_a_7b_block_allocates_nothing_and_passes_hygiene(tmp_path):
    result = capture(LLAMA7B, inputs=LLAMA7B_INPUTS, out_dir=tmp_path, device="meta")
    assert result.device == "meta" and result.gpu == "H100 SXM"
    assert [s.kind for s in result.subgraphs] == ["matmul", "attention", "norm"]
    attn = (tmp_path / result.subgraphs[1].file).read_text()
    assert "torch.randn(DIM_4096, DIM_4096) * 0.01562" in attn  # 1/sqrt(fan_in): no weights
    assert "BATCH = 8" in attn and "SEQ = 2048" in attn
    norm = loader.load(tmp_path / result.subgraphs[2].file)[0]
    report = hygiene.check(norm)
    assert report.passed, {k: c.detail for k, c in report.checks.items() if not c.passed}
    derived = autosize.derive(loader.load(tmp_path / result.subgraphs[1].file)[0])
    assert derived.fits and derived.overrides["DIM_4096"] < 4096


ODD_MODELS = """
import torch
import torch.nn as nn


class Gate(nn.Module):
    def forward(self, x):
        if x.sum() > 0:  # Python control flow on a tensor's value
            return x * 2
        return x - 1


class Gated(nn.Module):
    def __init__(self):
        super().__init__()
        self.gate = Gate()
        self.lin = nn.Linear(8, 8)

    def forward(self, x):
        return self.gate(self.lin(x))


class Scaled(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(8, 8)

    def forward(self, x, *, scale, extra=None):
        return torch.relu(self.lin(x)) * scale


class Outer(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = Scaled()
        self.more = nn.Sequential(*(nn.Linear(8, 8) for _ in range(5)))  # too many for one unit

    def forward(self, x):
        return self.more(self.inner(x, scale=2.0, extra={"k": 1}))


def make_gated():
    return Gated()


def make_outer():
    return Outer()


def not_a_module():
    return 3


def needs_args(dim):
    return nn.Linear(dim, dim)


def get_inputs():
    return [torch.randn(4, 8)]


def bad_inputs():
    return {"x": torch.randn(4, 8)}
"""


@pytest.fixture
def odd(tmp_path):
    path = tmp_path / "odd_models.py"
    path.write_text(textwrap.dedent(ODD_MODELS))
    return path


def test_data_dependent_control_flow_gets_a_named_error(odd, tmp_path):
    with pytest.raises(CaptureError) as err:
        capture(f"{odd}:make_gated", out_dir=tmp_path / "out")
    text = str(err.value)
    # The construct, as export words it, the user's line, and the module whose forward it is.
    assert "torch.export cannot trace gate (" in text and ".Gate)" in text
    assert "data-dependent" in text and "odd_models.py:8 (if x.sum() > 0:" in text
    assert not (tmp_path / "out").exists()  # nothing half-written
    with pytest.raises(CaptureError, match="use --device cpu") as err:  # meta cannot run it
        capture(f"{odd}:make_gated", out_dir=tmp_path / "out", device="meta")
    assert "failed in gate (" in str(err.value)


def test_a_keyword_argument_that_is_no_constant_is_split_and_says_why(odd, tmp_path):
    result = capture(f"{odd}:make_outer", out_dir=tmp_path / "out")
    assert sorted(s.sites[0].module for s in result.subgraphs) == ["inner.lin", "more"]
    (rest,) = result.uncovered
    assert rest.module == "inner" and rest.ops == ("relu", "mul")
    assert "keyword argument extra is a dict" in rest.why


KWARG_MODEL = """
import torch
import torch.nn as nn


class MaskedAttention(nn.Module):
    def __init__(self, dim=16):
        super().__init__()
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x, mask=None, scale=1.0):
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        scores = (q @ k.transpose(-1, -2)) * scale + mask
        return self.out(scores.softmax(-1) @ v)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([MaskedAttention() for _ in range(3)])

    def forward(self, x, mask):
        x = self.layers[0](x, mask=mask, scale=0.5)
        x = self.layers[1](x, scale=0.5, mask=mask)  # the same keywords in another order
        return self.layers[2](x, mask=mask, scale=0.25)  # another value: another problem


def make():
    torch.manual_seed(0)
    return Net().eval()


def get_inputs():
    return [torch.randn(2, 8, 16), torch.randn(2, 8, 8)]
"""


def test_a_call_with_keyword_arguments_is_a_unit_on_its_real_weights(tmp_path):
    path = tmp_path / "kwarg_model.py"
    path.write_text(KWARG_MODEL)
    spec = f"{path}:make"
    result = capture(spec, out_dir=tmp_path / "out")
    assert not result.uncovered
    shared, other = sorted(result.subgraphs, key=lambda s: -len(s.sites))
    # Sharing compares the keywords' values, not the order they were passed in.
    assert [s.module for s in shared.sites] == ["layers.0", "layers.1"]
    assert [s.module for s in other.sites] == ["layers.2"]
    assert shared.keyword_constants == {"scale": 0.5} and other.keyword_constants["scale"] == 0.25
    assert shared.keyword_tensors == ("mask",) and shared.constants == {}
    assert [(i.name, i.kind, i.index, i.target) for i in shared.inputs[:2]] == [
        ("x", "arg", 0, None),
        ("mask", "arg", None, "mask"),  # a keyword argument: found by its name
    ]
    assert Capture.load(tmp_path / "out") == result
    model = capture_target.load_factory(spec)().eval()
    seen: dict[str, tuple] = {}
    for name in ("layers.0", "layers.1", "layers.2"):

        def hook(mod, args, kwargs, out, name=name):
            seen[name] = (args, kwargs, out)

        model.get_submodule(name).register_forward_hook(hook, with_kwargs=True)
    with torch.no_grad():
        model(*capture_target.load_inputs(None, spec))
    for sub in result.subgraphs:
        reference = loader.load(tmp_path / "out" / sub.file)[0].instantiate().Model()
        for site in sub.sites:
            args, kwargs, expected = seen[site.module]
            state = model.get_submodule(site.module).state_dict()
            inputs = [
                state[i.target]
                if i.kind != "arg"
                else (args[i.index] if i.index is not None else kwargs[i.target])
                for i in sub.inputs
            ]
            with torch.no_grad():
                torch.testing.assert_close(reference(*inputs), expected, msg=site.module)


@pytest.mark.parametrize(
    ("spec", "inputs", "message"),
    [
        ("{odd}", None, "is not FILE:FACTORY"),
        ("{dir}/missing.py:make", None, "no such file"),
        ("{odd}:make_nothing", None, "has no 'make_nothing'"),
        ("{odd}:not_a_module", None, "returned a int, not a torch.nn.Module"),
        ("{odd}:needs_args", None, "the factory takes no arguments"),
        ("{odd}:make_outer", "{odd}:bad_inputs", "returned a dict"),
        ("{odd}:make_outer", "{odd}:nope", "has no 'nope'"),
        ("examples/models/tiny_llama.py:make_block", "{odd}", "is not FILE:FN"),
    ],
)
def test_bad_arguments_get_clear_errors(odd, tmp_path, spec, inputs, message):
    fill = {"odd": odd, "dir": tmp_path}
    with pytest.raises(TargetError, match=message):
        capture(
            spec.format(**fill),
            inputs=inputs.format(**fill) if inputs else None,
            out_dir=tmp_path / "out",
        )


def test_a_folder_that_is_not_a_capture_is_left_alone(tmp_path, block):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(TargetError, match="holds files and no capture.json"):
        capture(BLOCK, out_dir=tmp_path, top=1)
    _, out = block
    replaced = tmp_path / "again"
    shutil.copytree(out, replaced)
    capture(BLOCK, out_dir=replaced, top=1)  # an earlier capture is replaced, stale files go
    assert sorted(p.name for p in replaced.iterdir()) == ["01_matmul_mlp.py", "capture.json"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


def test_cli_prints_the_table_and_json(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["capture", BLOCK, "-o", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    for text in ("01_matmul_mlp", "attention", "share", "uncovered", "optimize"):
        assert text in result.output
    shown = runner.invoke(app, ["problems", "show", str(tmp_path / "c" / "02_attention_attn.py")])
    assert shown.exit_code == 0 and "derived cpu size (--size auto)" in shown.output
    result = runner.invoke(app, ["capture", CNN, "-o", str(tmp_path / "j"), "--json", "--top", "1"])
    assert result.exit_code == 0, result.output
    parsed = Capture.from_dict(json.loads(result.output))
    assert len(parsed.subgraphs) == 1
    result = runner.invoke(app, ["capture", "nowhere.py:make", "-o", str(tmp_path / "x")])
    assert result.exit_code == 2 and "no such file" in result.output
    result = runner.invoke(app, ["capture", "--help"])
    assert "FILE:FACTORY" in result.output and "kernelloop optimize" in result.output


IN_PLACE_MODEL = """
import torch
import torch.nn as nn


class ConvBnRelu(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)  # torchvision's style

    def forward(self, x):
        y = self.bn(self.conv(x))
        y.mul_(2.0)  # mutates y; the next line reads y, not the mul_'s result
        return self.relu(y + 1.0)


def make():
    torch.manual_seed(0)
    return ConvBnRelu().eval()


def get_inputs():
    return [torch.randn(2, 4, 10, 12)]  # no size equals another: hold-outs can vary each
"""


def test_in_place_ops_become_out_of_place_and_running_means_stay_centred(tmp_path):
    path = tmp_path / "in_place.py"
    path.write_text(textwrap.dedent(IN_PLACE_MODEL))
    result = capture(f"{path}:make", out_dir=tmp_path / "out")
    (sub,) = result.subgraphs
    source = (tmp_path / "out" / sub.file).read_text()
    # No template matches relu_ or mul_; written out of place they share relu's and mul's.
    assert "relu_.default" not in source and "mul_.Tensor" not in source
    assert "aten.relu.default" in source and "aten.mul.Tensor" in source
    problem = loader.load(tmp_path / "out" / sub.file)[0]
    model = capture_target.load_factory(f"{path}:make")()
    (x,) = capture_target.load_inputs(None, f"{path}:make")
    state = model.state_dict()
    inputs = [x if i.kind == "arg" else state[i.target] for i in sub.inputs]
    with torch.no_grad():
        torch.testing.assert_close(problem.instantiate().Model()(*inputs), model(x))
    # A running mean drawn positive around 1 put most of the BatchNorm's output below zero,
    # where the ReLU hid the conv's weights from the check that every input matters.
    report = hygiene.check(problem)
    failed = {k: c.detail for k, c in report.checks.items() if not c.passed}
    assert not failed, failed
