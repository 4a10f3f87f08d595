"""Every shipped Triton kernel compiles for sm_90, checked on a CPU.

The module seed kernels (attention, quantized GEMM, conv2d) run on small shapes under the Triton
interpreter with ``compile_check.record_launches`` on; each distinct launch (kernel, argument
types, constexprs, warps, stages) is then compiled for ``GPUTarget("cuda", 90, 32)`` by a child
process without ``TRITON_INTERPRET``. The interpreter never runs the compiler, so this is what
catches a kernel that passes every CPU test and cannot be built for the GPU (``tl.dot`` of int8
operands into an int32 accumulator without ``out_dtype``, found on an H100). Triton 3.9 (CPU CI)
accepts that dot, Triton 3.6 (the H100's) does not: the compile process applies 3.6's rule
(``compile_check._older_dot_default``), so the test fails on ``_w8a8_kernel`` without the fix.

Where the CPU path differs from a GPU launch, what is compiled is the GPU launch:
- bfloat16 ``tl.dot`` operands are widened to float32 under the interpreter (a constexpr,
  ``DOT_FP32`` in qgemm and conv, ``FP32_DOT`` in attention and the builtin attention template);
  a bf16 launch is compiled with the flag off, as a GPU launches it (the flag's fp32 path is
  still compiled, by the float32 launches that take it on the GPU too);
- conv2d on a GPU autotunes fp16/bf16 over ``kernels/conv.py``'s ``_gpu_configs`` where the CPU
  takes one fixed tile: every config the autotuner keeps for the shape is recorded without
  running it;
- qgemm picks split-K only on a GPU (from the SM count): explicit split-K configs cover it.
Int arguments are specialised as a GPU launch does (1 a constant, multiples of 16 divisible).

CI's Triton is not the GPU machine's: with ``KERNELLOOP_COMPILE_TRITON`` naming a folder from
``scripts/fetch-triton.sh VERSION``, every launch is compiled by that Triton as well.
"""

import os

import torch

if not torch.cuda.is_available():  # must precede the first import of triton
    os.environ["TRITON_INTERPRET"] = "1"

import importlib.util  # noqa: E402
import sys  # noqa: E402

import pytest  # noqa: E402

from kernelloop.feedback.compile_check import compile_all, record_launches  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("TRITON_INTERPRET") != "1", reason="records launches under the interpreter"
    ),
]
FLAGS = ("DOT_FP32", "FP32_DOT")  # constexprs that widen bf16 dot operands on the interpreter


def _as_on_gpu(launches):
    """The launches, each bf16 one that took the interpreter's fp32-dot path with the flag off
    (what a GPU launch passes); deduplicated again, as two may now be one compile."""
    out = {}
    for rec in launches:
        consts = dict(rec.constexprs)
        flags = {f: False for f in FLAGS if consts.get(f) is True}
        if flags and any(t == "*bf16" for _, t in rec.signature):
            rec = rec.replace(**flags)
        out.setdefault(rec.key(), rec)
    return list(out.values())


# Another Triton to compile with as well (scripts/fetch-triton.sh), e.g. the GPU machine's.
OTHER_TRITON = os.environ.get("KERNELLOOP_COMPILE_TRITON")


def _assert_compiled(launches):
    """Compiled by this Triton, and by OTHER_TRITON too when set; this Triton's results."""
    records = _as_on_gpu(launches)
    outcomes = []
    for triton_dir in [None, *([OTHER_TRITON] if OTHER_TRITON else [])]:
        results = compile_all(records, arch=90, triton_dir=triton_dir)
        assert results, "no Triton launch was recorded"
        failed = [f"{name}: {message}" for name, ok, message in results if not ok]
        report = "\n\n".join(failed)
        assert not failed, f"{len(failed)} of {len(results)} launches fail for sm_90:\n{report}"
        outcomes.append(results)
    return outcomes[0]


# --- module seed kernels --------------------------------------------------------------------------


def _attention():
    from kernelloop.kernels.attention import flash_attention

    g = torch.Generator().manual_seed(0)
    # seq 128 gives the GPU's tiles (BLOCK_M 128, BLOCK_N 64) in one program; d128 takes 8 warps.
    # Each compile takes ~10 s of a core: every dtype once, causal once, d128 once.
    for dtype, head_dim, causal in [
        (torch.float16, 64, False),
        (torch.float16, 128, True),
        (torch.bfloat16, 64, True),
        (torch.float32, 64, False),
    ]:
        q, k, v = (torch.randn(1, h, 128, head_dim, generator=g, dtype=dtype) for h in (2, 1, 1))
        flash_attention(q, k, v, causal, head_dim**-0.5)


def _qgemm():
    from kernelloop.kernels import qgemm as kernels
    from kernelloop.modules.qgemm import quantize_weight

    g = torch.Generator().manual_seed(0)
    w = torch.randn(45, 256, generator=g) / 16
    for dtype in (torch.float16, torch.bfloat16):
        x = torch.randn(4, 256, generator=g).to(dtype)
        bias = torch.randn(45, generator=g).to(dtype)
        for bits in (8, 6, 4):
            for symmetric in (True, False):
                qw = quantize_weight(w, bits, 64, symmetric)
                kernels.wxa16_linear(
                    x, qw.packed, qw.scales, qw.zeros, bias, bits=bits, group_size=64
                )
        for symmetric in (True, False):  # W8A8 (act_bits=8)
            qw = quantize_weight(w, 8, 64, symmetric)
            kernels.w8a8_linear(x, qw.packed, qw.scales, qw.zeros, bias, group_size=64)
    # split-K (a GPU picks it for small M): fp32 partials and the reduce kernel
    split = kernels.Config(16, 32, 64, split_k=2)
    qw = quantize_weight(w, 4, 64, False)
    x = torch.randn(4, 256, generator=g).half()
    kernels.wxa16_linear(x, qw.packed, qw.scales, qw.zeros, None, bits=4, group_size=64,
                         config=split)  # fmt: skip
    qw = quantize_weight(w, 8, 64, True)
    kernels.w8a8_linear(x, qw.packed, qw.scales, qw.zeros, None, group_size=64, config=split)


def _conv(monkeypatch):
    from kernelloop.kernels import conv as seed_conv

    fixed = seed_conv._kernel
    tile = ("BLOCK_M", "BLOCK_N", "BLOCK_K", "GROUP_M", "num_warps", "num_stages")

    class AlsoTuned:  # conv2d's CPU path launches `fixed`; a GPU launch of fp16/bf16 autotunes
        def __getitem__(self, grid):
            def launch(*args, **kwargs):
                if args[0].dtype in (torch.float16, torch.bfloat16):
                    meta = {k: v for k, v in kwargs.items() if k not in tile}
                    # warmup: the pruned configs are recorded, none runs
                    seed_conv._tuned_kernel.warmup(*args, grid=grid, **{**meta, "DOT_FP32": False})
                return fixed[grid](*args, **kwargs)

            return launch

    monkeypatch.setattr(seed_conv, "_kernel", AlsoTuned())
    g = torch.Generator().manual_seed(0)
    # C_in 64 / C_out 256: no autotune config is pruned; M = 16 output pixels keeps it quick
    for dtype, nhwc, c_in, c_out, act in [
        (torch.float16, True, 64, 256, "relu"),
        (torch.bfloat16, True, 8, 16, "gelu"),
        (torch.float32, False, 8, 16, None),
        (torch.float32, True, 5, 16, "silu"),  # C_in % BLOCK_K != 0: EVEN_K off
    ]:
        x = torch.randn(1, c_in, 6, 6, generator=g).to(dtype)
        if nhwc:
            x = x.contiguous(memory_format=torch.channels_last)
        w = (torch.randn(c_out, c_in, 3, 3, generator=g) / 8).to(dtype)
        b = torch.randn(c_out, generator=g).to(dtype)
        seed_conv.conv2d(x, w, b, (1, 1), (0, 0), (1, 1), act)


def _conv_kernel_configs():
    from kernelloop.kernels import conv as seed_conv

    return seed_conv._gpu_configs()


def test_module_seed_kernels_compile_for_sm90(monkeypatch):
    with record_launches() as launches:
        _attention()
        _qgemm()
        _conv(monkeypatch)
    names = {rec.qualname for rec in launches}
    assert names >= {"_attention_fwd", "_wxa16_kernel", "_w8a8_kernel", "_quantize_rows_kernel",
                     "_splitk_reduce_kernel", "conv2d_kernel"}  # fmt: skip
    conv = [r for r in launches if r.qualname == "conv2d_kernel"]
    fp16_conv = [r for r in conv if ("x_ptr", "*fp16") in r.signature]
    tuned = len(_conv_kernel_configs())
    assert len(fp16_conv) == 1 + tuned, f"the {tuned} conv autotune configs were not all recorded"
    results = _assert_compiled(launches)
    # Compiled as a launch specialises them (x's channel stride 1 a constant, sizes divisible by
    # 16 marked so), no tuned conv tile spills. Compiled generically, every one of them did: 255
    # registers, up to 4.7 KB of spills, which the first report took for the GPU's kernel.
    conv_reports = [msg for name, _, msg in results if name == "conv2d_kernel" and "*fp16" in msg]
    assert conv_reports and all(" 0 B spilled" in msg for msg in conv_reports), conv_reports


# --- the builtin coder's generated candidates -----------------------------------------------------

# Each template family once (elementwise, reductions, matmul, conv, attention, cross-entropy),
# and the module problems: bf16 attention and the qlinear templates (int8 tl.dot for W8A8).
# All bundled problems compile (56 launches, ~25 s more); the transformer block (level3/02)
# stands for the 4-D batched matmuls over permuted views.
BUILTIN = [
    *(f"level1/{stem}" for stem in ("01_relu", "05_softmax", "07_layernorm", "14_matmul_square",
                                    "18_conv2d", "20_attention", "21_cross_entropy")),
    "level3/02_transformer_block",
    *(f"modules/{stem}" for stem in ("02_attention_causal_gqa_bf16", "03_qgemm_w8a16",
                                     "05_qgemm_w4a16", "06_qgemm_w6a16", "07_qgemm_w8a8")),
]  # fmt: skip


def _candidate_launches(problem_id: str, tmp_path):
    from builtin_support import generate, traced

    from kernelloop.kernelbench import instance

    problem, overrides, graph = traced(problem_id)
    _, source = generate(problem, overrides, graph)
    # A real file: Triton (interpreter and compiler) reads kernel sources through inspect, and
    # the compile process imports the module from it. Our own generated code, so trusted here.
    name = "kl_candidate_" + problem_id.replace("/", "_")
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        reference = problem.instantiate(overrides)
        inputs = instance.make_inputs(reference, 0, "given", problem.dtype)
        model = module.ModelNew(*instance.init_inputs(reference))
        model = model.to(dtype=instance.torch_dtype(problem.dtype))
        with record_launches() as launches, torch.no_grad():
            model(*inputs)
    finally:
        del sys.modules[name]
    assert launches, f"{problem_id}: the candidate launched no Triton kernel"
    return launches


def test_builtin_candidates_compile_for_sm90(tmp_path):
    launches = []
    for problem_id in BUILTIN:
        launches += _candidate_launches(problem_id, tmp_path)
    _assert_compiled(launches)


def test_int_arguments_are_recorded_as_a_launch_specialises_them():
    from kernelloop.feedback.compile_check import _arg_type

    got = [_arg_type(v) for v in (1, 7, 0, 32, 2**31 + 16, 2**31 + 1, True, 0.5)]
    assert got == [1, "i32", 16, 16, 1 << 35, "i64", "i1", "fp32"]
