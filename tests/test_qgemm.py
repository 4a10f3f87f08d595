"""kernelloop.modules.qgemm: bit layouts, quantisation error, the W8A16/W6A16/W4A16/W8A8 seed
kernels against the PyTorch references, QuantLinear, the custom op under torch.compile, and the
ops' library convention (the bundled problems and their solutions serve dispatch). On a CPU the
Triton kernels run under the interpreter; on a GPU the same tests run them compiled."""

import os

import torch

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
if DEVICE == "cpu":  # must precede the first import of triton
    os.environ["TRITON_INTERPRET"] = "1"

import importlib.util  # noqa: E402

import pytest  # noqa: E402
import torch.nn as nn  # noqa: E402
from paths import REPO  # noqa: E402

from kernelloop import settings  # noqa: E402
from kernelloop.kernels import qgemm as kernels  # noqa: E402
from kernelloop.kernels import qgemm_pack as packing  # noqa: E402
from kernelloop.library import explain, ops  # noqa: E402
from kernelloop.modules.qgemm import (  # noqa: E402
    QuantizedWeight,
    QuantLinear,
    dequantize,
    op_tensors,
    qlinear,
    quantize_activations,
    quantize_weight,
    reference_qlinear,
    reference_qlinear_w8a8,
)

PROBLEMS = os.path.join(REPO, "kernelbench", "problems", "modules")
TOL = {
    torch.float32: {"atol": 1e-4, "rtol": 1e-4},
    torch.float16: {"atol": 1e-2, "rtol": 1e-2},
    torch.bfloat16: {"atol": 2e-2, "rtol": 2e-2},  # one bf16 ulp at |y| ~ 2-4 is 1.6e-2
}
DTYPES = [torch.float16, torch.bfloat16, torch.float32]


@pytest.fixture(autouse=True)
def _empty_library(tmp_path):
    # No user library entries: every call here must reach the seed kernel.
    with settings.override(library_dir=tmp_path / "library"):
        yield


def _weight(n=45, k=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, k, generator=g) / k**0.5


def _x(m, k, dtype, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(m, k, generator=g).to(DEVICE, dtype)


def _check(out, ref):
    assert out.shape == ref.shape and out.dtype == ref.dtype
    assert ref.float().abs().max() > 0.5  # an all-zeros output could not pass
    torch.testing.assert_close(out, ref, **TOL[ref.dtype])


# --- bit layouts and quantisation ----------------------------------------------------------------


@pytest.mark.parametrize("bits", [8, 6, 4])
def test_pack_unpack_round_trip_is_exact(bits):
    codes = torch.randint(0, 2**bits, (7, 48), dtype=torch.uint8)
    packed = packing.pack(codes, bits)
    assert packed.dtype == torch.uint8
    assert packed.shape == (7, {8: 48, 6: 36, 4: 24}[bits])  # INT6: 3 bytes per 4 values
    assert torch.equal(packing.unpack(packed, bits, 48), codes)


def test_documented_bit_layouts():
    four = torch.tensor([[1, 2, 3, 4]], dtype=torch.uint8)
    assert packing.pack(four, 4).tolist() == [[0x21, 0x43]]  # even k in the low nibble
    word = 1 | 2 << 6 | 3 << 12 | 4 << 18  # little-endian 24-bit word
    assert packing.pack(four, 6).tolist() == [[word & 255, (word >> 8) & 255, word >> 16]]
    assert packing.pack(four, 8).tolist() == [[1, 2, 3, 4]]


@pytest.mark.parametrize("bits", [8, 6, 4])
@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("scale_dtype", [torch.float16, torch.float32])
def test_quantization_error_is_at_most_half_a_step(bits, symmetric, scale_dtype):
    w = _weight(n=33, k=192) * torch.linspace(0.01, 3, 192)  # groups of very different ranges
    w[0, :64] = 0.0  # an all-zero group stays finite and exact
    qw = quantize_weight(w, bits, 64, symmetric, scale_dtype)
    assert qw.packed.shape == (33, packing.packed_cols(192, bits))
    assert qw.scales.shape == (33, 3) and qw.scales.dtype == scale_dtype
    assert (qw.zeros is None) == symmetric
    assert torch.equal(packing.unpack(qw.packed, bits), qw.codes())
    err = (dequantize(qw) - w).abs().view(33, 3, 64).amax(-1)
    assert (err <= qw.scales.float() / 2 * (1 + 1e-5)).all()
    assert dequantize(qw)[0, :64].abs().max() == 0
    if not symmetric:  # integer zero points inside the code range
        assert torch.equal(qw.zeros, qw.zeros.round()) and qw.zeros.max() <= 2**bits - 1


def test_quantize_weight_rejects_bad_arguments():
    with pytest.raises(ValueError, match="group_size"):
        quantize_weight(_weight(k=256), 4, 100)
    with pytest.raises(ValueError, match="bits"):
        quantize_weight(_weight(k=256), 5, 64)
    with pytest.raises(ValueError, match="multiple of 4"):
        quantize_weight(_weight(k=18), 6, 9)
    with pytest.raises(ValueError, match="act_bits=8 needs bits=8"):
        QuantLinear.from_linear(nn.Linear(64, 8), bits=4, group_size=64, act_bits=8)


def test_quantized_weight_to_moves_every_tensor():
    qw = quantize_weight(_weight(), 4, 64, symmetric=False).to("meta")
    assert {t.device.type for t in (qw.packed, qw.scales, qw.zeros)} == {"meta"}
    assert qw.nbytes == 45 * 128 + 2 * 45 * 4 * 2


# --- kernels against the references --------------------------------------------------------------


@pytest.mark.parametrize("bits", [8, 6, 4])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("symmetric", [True, False])
def test_weight_only_kernel_matches_reference(bits, dtype, symmetric):
    qw = quantize_weight(_weight(n=45, k=256), bits, 64, symmetric).to(DEVICE)
    bias = torch.randn(45).to(DEVICE, dtype)
    for m in (1, 3, 17):
        x = _x(m, 256, dtype)
        for b in (None, bias):
            out = kernels.wxa16_linear(
                x, qw.packed, qw.scales, qw.zeros, b, bits=bits, group_size=64
            )
            _check(out, reference_qlinear(x, qw, b))


@pytest.mark.parametrize("bits", [8, 6, 4])
@pytest.mark.parametrize(
    "cfg",
    [
        kernels.Config(16, 32, 64, split_k=3),  # split-K: fp32 partials + the reduce kernel
        kernels.Config(16, 16, 256, split_k=2),  # BLOCK_K > group: per-element scale gather
        kernels.Config(32, 64, 32, split_k=1),
    ],
    ids=["splitk3", "gather", "small-k"],
)
def test_weight_only_kernel_configs(bits, cfg):
    qw = quantize_weight(_weight(n=45, k=384), bits, 128, symmetric=False).to(DEVICE)
    x, bias = _x(5, 384, torch.float16), torch.randn(45).to(DEVICE, torch.float16)
    out = kernels.wxa16_linear(
        x, qw.packed, qw.scales, qw.zeros, bias, bits=bits, group_size=128, config=cfg
    )
    _check(out, reference_qlinear(x, qw, bias))


@pytest.mark.parametrize("dtype", DTYPES)
def test_activation_quantization_kernel_matches_reference(dtype):
    x = _x(5, 300, dtype) * torch.linspace(0.1, 4, 300, device=DEVICE).to(dtype)
    x[2] = 0  # an all-zero row: codes 0, a finite scale
    xq, sx = kernels.quantize_rows(x)
    ref_q, ref_s = quantize_activations(x)
    assert xq.dtype == torch.int8 and xq.abs().max() == 127
    torch.testing.assert_close(sx, ref_s.squeeze(-1), atol=0, rtol=1e-6)
    assert (xq.int() - ref_q.int()).abs().max() <= 1  # ties may round differently on a GPU
    assert torch.equal(xq[2], torch.zeros_like(xq[2]))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("group", [64, 256], ids=["group64", "per-channel"])
def test_w8a8_kernel_matches_reference(dtype, symmetric, group):
    qw = quantize_weight(_weight(n=45, k=256), 8, group, symmetric).to(DEVICE)
    bias = torch.randn(45).to(DEVICE, dtype)
    for m in (1, 3, 17):
        x = _x(m, 256, dtype)
        for b in (None, bias):
            out = kernels.w8a8_linear(x, qw.packed, qw.scales, qw.zeros, b, group_size=group)
            _check(out, reference_qlinear_w8a8(x, qw, b))
    # split-K over groups, and within the single group of per-channel scales
    out = kernels.w8a8_linear(
        x, qw.packed, qw.scales, qw.zeros, bias, group_size=group,
        config=kernels.Config(16, 32, 32, split_k=3),
    )  # fmt: skip
    _check(out, reference_qlinear_w8a8(x, qw, bias))


def test_w8a8_is_close_to_the_weight_only_result():
    # W8A8 adds activation rounding (<= s_x / 2 per element) on top of the weight's: still close.
    qw = quantize_weight(_weight(n=45, k=256), 8, 64).to(DEVICE)
    x = _x(4, 256, torch.float32)
    diff = reference_qlinear_w8a8(x, qw) - reference_qlinear(x, qw)
    assert diff.abs().max() < 0.05 * reference_qlinear(x, qw).abs().max()


# --- public op, module, custom op ----------------------------------------------------------------


@pytest.mark.parametrize(
    "bits,act_bits,symmetric", [(4, 16, True), (6, 16, False), (8, 16, True), (8, 8, False)]
)
def test_quant_linear_from_linear_matches_reference(bits, act_bits, symmetric):
    torch.manual_seed(0)
    linear = nn.Linear(128, 45)
    q = QuantLinear.from_linear(
        linear, bits=bits, group_size=32, symmetric=symmetric, act_bits=act_bits
    ).to(DEVICE)
    assert q.packed.dtype == torch.uint8 and (q.zeros is None) == symmetric
    x = torch.randn(2, 3, 128).to(DEVICE, torch.float16)  # (..., in_features) inputs
    out = q(x)
    assert out.shape == (2, 3, 45) and out.dtype == torch.float16
    ref_fn = reference_qlinear_w8a8 if act_bits == 8 else reference_qlinear
    ref = ref_fn(x.view(6, 128), q.qweight, q.bias.half()).view(2, 3, 45)
    torch.testing.assert_close(out, ref, **TOL[torch.float16])
    # ... and close to the float layer it replaces (bounded by the quantisation error)
    full = linear.to(DEVICE, torch.float16)(x)
    assert (out - full).abs().max() < 0.25 * full.abs().max()
    assert f"W{bits}A{act_bits}" in repr(q)


def test_qlinear_without_bias_and_shape_errors():
    qw = quantize_weight(_weight(n=45, k=256), 4, 64).to(DEVICE)
    x = _x(3, 256, torch.float16)
    torch.testing.assert_close(qlinear(x, qw), reference_qlinear(x, qw), **TOL[torch.float16])
    with pytest.raises(ValueError, match="features"):
        qlinear(_x(3, 128, torch.float16), qw)


def test_custom_op_under_torch_compile_aot_eager():
    torch.manual_seed(0)
    model = nn.Sequential(
        QuantLinear.from_linear(nn.Linear(128, 64), bits=4, group_size=64),
        nn.ReLU(),
        QuantLinear.from_linear(nn.Linear(64, 45), bits=8, group_size=64, act_bits=8),
    ).to(DEVICE)
    x = torch.randn(3, 128).to(DEVICE, torch.float16)
    eager = model(x)
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(compiled(x), eager, atol=0, rtol=0)


def test_custom_op_passes_opcheck():
    qw = quantize_weight(_weight(n=45, k=256), 4, 64, symmetric=False).to(DEVICE)
    x, bias = _x(3, 256, torch.float16), torch.randn(45).to(DEVICE, torch.float16)
    args = (x, qw.packed, qw.scales, qw.zeros, bias, 4, 64, 16)
    torch.library.opcheck(
        torch.ops.kernelloop.qlinear.default,
        args,
        test_utils=("test_schema", "test_faketensor", "test_aot_dispatch_static"),
    )


# --- the ops' library convention -----------------------------------------------------------------

CASES = [  # op, bits, act_bits, problem stem, symmetric, bias
    ("qgemm.w8a16", 8, 16, "03_qgemm_w8a16", True, False),
    ("qgemm.w4a16", 4, 16, "05_qgemm_w4a16", False, False),
    ("qgemm.w6a16", 6, 16, "06_qgemm_w6a16", True, True),
    ("qgemm.w8a8", 8, 8, "07_qgemm_w8a8", True, True),
]


def _load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("op,bits,act_bits,stem,symmetric,bias", CASES)
def test_problem_and_solution_serve_the_op(op, bits, act_bits, stem, symmetric, bias):
    spec = ops.get(op)
    assert spec.problems == (f"modules/{stem}",)
    k, group = 256, 64
    cfg = {"group_size": group, "symmetric": symmetric}
    assert spec.config_from_init(spec.init_args(cfg)) == cfg
    qw = quantize_weight(_weight(n=45, k=k), bits, group, symmetric).to(DEVICE)
    x = _x(3, k, torch.float16)
    b = torch.randn(45).to(DEVICE, torch.float16) if bias else None
    tensors = op_tensors(x, qw, b)
    expected = spec.reference(*tensors, **cfg)
    assert spec.bucket(tensors, cfg) == (
        f"m4-n45-k256-g64-{'sym' if symmetric else 'asym'}{'-bias' if bias else ''}"
    )
    assert "seed kernel" in explain(op, *tensors, **cfg)
    _check(spec.seed(*tensors, **cfg), expected)
    # A library entry is ModelNew(*init_args(cfg))(*tensors): the bundled problem's Model and
    # its known-good solution take exactly the op's tensors.
    problem = _load(os.path.join(PROBLEMS, f"{stem}.py"), f"_qgemm_problem_{stem}")
    solution = _load(os.path.join(PROBLEMS, "solutions", f"{stem}.py"), f"_qgemm_solution_{stem}")
    assert len(problem.get_init_inputs()) == len(spec.init_args(cfg))
    with torch.no_grad():
        _check(problem.Model(*spec.init_args(cfg))(*tensors), expected)
        _check(solution.ModelNew(*spec.init_args(cfg))(*tensors), expected)


@pytest.mark.parametrize("op,bits,act_bits,stem,symmetric,bias", CASES)
def test_problem_inputs_bucket_with_the_ops_config(op, bits, act_bits, stem, symmetric, bias):
    # What promotion does: the problem's own inputs, bucketed with config_from_init(its args).
    spec = ops.get(op)
    problem = _load(os.path.join(PROBLEMS, f"{stem}.py"), f"_qgemm_bucket_{stem}")
    with torch.device("meta"):
        tensors = [t.half() if t.is_floating_point() else t for t in problem.get_inputs()]
    cfg = spec.config_from_init(problem.get_init_inputs())
    assert cfg["symmetric"] is symmetric
    qw_shape = (tensors[1].shape[0], packing.in_features_of(tensors[1].shape[1], bits))
    assert qw_shape == (problem.n, problem.k) and tensors[0].shape == (problem.m, problem.k)
    assert spec.bucket(tensors, cfg).startswith(f"m16-n{problem.n}-k{problem.k}-")


def test_dispatch_log_names_the_seed_kernel(capsys):
    from kernelloop.library import dispatcher

    dispatcher.clear_cache()
    qw = quantize_weight(_weight(n=45, k=256), 4, 64).to(DEVICE)
    with settings.override(dispatch_log=True):
        qlinear(_x(1, 256, torch.float16), qw)
    if DEVICE == "cpu":
        assert "qgemm.w4a16: seed kernel" in capsys.readouterr().err


def test_quantized_weight_is_a_plain_dataclass():
    qw = quantize_weight(_weight(), 6, 64)
    assert isinstance(qw, QuantizedWeight) and qw.shape == (45, 256) and qw.bits == 6
