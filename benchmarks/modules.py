"""Efficiency modules against the best PyTorch path, timed on this machine's CUDA GPU.

    python benchmarks/modules.py [MODULE ...] [--budget-ms MS] [--warmup-ms MS] [--json PATH]
                                 [--quick]

Every number comes from kernelloop's one benchmarking routine (``sandbox.timing.benchmark``:
CUDA events, device-wide synchronize, L2 flushed and fresh inputs before every call, repetitions
by time budget) and is reported as a median with IQR and n, in TFLOP/s and as a fraction of the
GPU's datasheet peak (``feedback.gpu_specs``), next to the GPU and software versions. Speedups
are baseline median / module median with a bootstrap 95% interval. Without a CUDA GPU the script
says so and exits 0.

Layout: shared helpers first, then one section per module, each a ``<module>_benchmark(opts)``
function returning ``Row``s, then the ``BENCHMARKS`` registry that ``main`` reads. To add a module,
add its section above the registry and one line to ``BENCHMARKS``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

# --- shared helpers ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Options:
    budget_ms: float  # timed calls per function, in milliseconds of GPU time
    warmup_ms: float
    quick: bool = False  # only the cases a target is set for, for a short device lease


@dataclasses.dataclass
class Row:
    module: str  # "attention"
    case: str  # the shape and mode, e.g. "B4 H16 S4096 D128 bf16 causal"
    impl: str  # "kernelloop" or the baseline's name
    median_ms: float
    iqr_ms: float
    n: int
    tflops: float | None = None  # achieved
    fraction_of_peak: float | None = None  # of the dtype's dense tensor-core peak
    speedup: list[float] | None = None  # [point, low, high] vs the case's baseline
    target: float | None = None  # the speedup this module aims for on this case
    baseline: str = ""  # the speedup's denominator, e.g. "sdpa-flash"
    note: str = ""  # e.g. which kernel dispatch ran


@dataclasses.dataclass
class _Timed:
    samples: list[float]
    summary: Any  # kernelloop.sandbox.stats.Summary


_harness: dict[str, Any] = {}


def _time(fn: Callable[..., Any], templates: Sequence[Any], opts: Options) -> _Timed:
    """Time ``fn(*args)`` with fresh copies of ``templates`` per call (no replay by pointer)."""
    from kernelloop.sandbox import stats, timing

    if not _harness:  # one clock and one flush buffer for the whole run
        _harness["clock"] = timing.Clock.capture()
        _harness["flusher"] = timing.L2Flusher(torch.device("cuda"))
        _harness["gen"] = torch.Generator().manual_seed(0)
    with torch.no_grad():
        fn(*templates)  # JIT compilation and autotuning stay out of the warm-up estimate
        torch.cuda.synchronize()
        samples = timing.benchmark(
            fn,
            lambda: timing.fresh_inputs(templates, _harness["gen"]),
            clock=_harness["clock"],
            flusher=_harness["flusher"],
            budget_ms=opts.budget_ms,
            warmup_ms=opts.warmup_ms,
        )
    return _Timed(samples, stats.summarize(samples))


def _row(module: str, case: str, impl: str, timed: _Timed, flops: float, dtype, **extra) -> Row:
    from kernelloop.feedback import gpu_specs

    median = timed.summary.median
    tflops = flops / (median * 1e-3) / 1e12
    peak = gpu_specs.peak_flops(gpu_specs.current(), dtype) / 1e12
    return Row(
        module, case, impl, median, timed.summary.iqr, timed.summary.n,
        tflops=tflops, fraction_of_peak=tflops / peak, **extra,
    )  # fmt: skip


def _speedup(baseline: _Timed, ours: _Timed) -> list[float]:
    from kernelloop.sandbox import stats

    interval = stats.bootstrap_ratio(baseline.samples, ours.samples)
    return [interval.point, interval.low, interval.high]


def _environment() -> dict[str, Any]:
    import triton

    from kernelloop.feedback import gpu_specs

    props = torch.cuda.get_device_properties(0)
    spec = gpu_specs.current()
    return {
        "gpu": props.name,
        "spec": spec.name + (" (estimated)" if spec.generic else ""),
        "compute_capability": f"{props.major}.{props.minor}",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "triton": triton.__version__,
    }


def _print_header() -> None:
    print(f"{'case':<36} {'impl':<20} {'median ms':>10} {'IQR':>8} {'n':>5} {'TFLOP/s':>8} "
          f"{'peak':>6} {'speedup [95% CI]':>22}")  # fmt: skip


def _print(rows: list[Row]) -> None:
    for r in rows:
        speed = f"{r.speedup[0]:.2f}x [{r.speedup[1]:.2f}, {r.speedup[2]:.2f}]" if r.speedup else ""
        print(
            f"{r.case:<36} {r.impl:<20} {r.median_ms:>10.3f} {r.iqr_ms:>8.3f} {r.n:>5} "
            f"{r.tflops or 0:>8.1f} {100 * (r.fraction_of_peak or 0):>5.1f}% {speed:>22}"
        )
        if r.note:
            print(f"{'':<36} {'':<20} {r.note}")


def _verdicts(rows: list[Row]) -> list[str]:
    return [
        f"{r.module} {r.case}: {r.speedup[0]:.2f}x of {r.baseline} "
        f"({'meets' if r.speedup[0] >= r.target else 'MISSES'} the {r.target}x target)"
        for r in rows
        if r.speedup and r.target is not None
    ]


# --- attention -----------------------------------------------------------------------------------

ATTENTION_TARGET = 0.9  # of SDPA's flash backend, per case


def attention_benchmark(opts: Options) -> Iterator[Row]:
    """``kernelloop.modules.attention`` vs SDPA's FlashAttention backend: bf16, B4 H16 S4096
    D128, causal and not. FLOPs are 4 * B * H * S^2 * D (two matmuls), halved for causal."""
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from kernelloop.library import explain
    from kernelloop.modules import attention

    batch, heads, seq, head_dim, dtype = 4, 16, 4096, 128, torch.bfloat16
    for causal in (False,) if opts.quick else (False, True):
        gen = torch.Generator(device="cuda").manual_seed(0)
        q, k, v = (
            torch.randn(batch, heads, seq, head_dim, device="cuda", dtype=dtype, generator=gen)
            for _ in range(3)
        )

        def ours(q, k, v, causal=causal):
            return attention(q, k, v, causal=causal)

        def flash(q, k, v, causal=causal):
            with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                return F.scaled_dot_product_attention(q, k, v, is_causal=causal)

        with torch.no_grad():  # never time a wrong kernel
            torch.testing.assert_close(ours(q, k, v), flash(q, k, v), atol=2e-2, rtol=2e-2)
        flops = 4 * batch * heads * seq * seq * head_dim / (2 if causal else 1)
        case = f"B{batch} H{heads} S{seq} D{head_dim} bf16 {'causal' if causal else 'full'}"
        t_flash, t_ours = _time(flash, [q, k, v], opts), _time(ours, [q, k, v], opts)
        yield _row("attention", case, "sdpa-flash", t_flash, flops, dtype)
        yield _row(
            "attention",
            case,
            "kernelloop",
            t_ours,
            flops,
            dtype,
            speedup=_speedup(t_flash, t_ours),
            target=ATTENTION_TARGET,
            baseline="sdpa-flash",
            note="ran: " + explain("attention", q, k, v, causal=causal, scale=head_dim**-0.5),
        )


# --- qgemm ---------------------------------------------------------------------------------------

QGEMM_TARGET = 2.5  # W4A16 over fp16 cuBLAS at M <= 16: the weight is ~4x fewer bytes
QGEMM_VARIANTS = (  # name, bits, group size (None: per-channel), activation bits
    ("w4a16", 4, 128, 16),
    ("w8a16", 8, 128, 16),
    ("w8a8", 8, None, 8),
)


def _qgemm_bandwidth(weight_bytes: int, timed: _Timed, spec) -> str:
    gbs = weight_bytes / (timed.summary.median * 1e-3) / 1e9
    return (
        f"weight {weight_bytes / 1e6:.1f} MB: {gbs:.0f} GB/s = "
        f"{100 * gbs / spec.mem_bandwidth_gbs:.0f}% of {spec.mem_bandwidth_gbs:.0f} GB/s"
    )


def qgemm_benchmark(opts: Options) -> Iterator[Row]:
    """``kernelloop.modules.qgemm.qlinear`` (W4A16 and W8A16 with groups of 128, symmetric; W8A8
    with per-channel weight scales) vs fp16 cuBLAS (``torch.matmul`` on the fp16 weight), x fp16
    (M, K) at M in (1, 16, 128), N = K in (4096, 8192). FLOPs are 2 * M * N * K; each note gives
    the weight's bytes (packed codes + scales, or fp16) and the bandwidth they imply: at small M
    the weight is the traffic. Rows ``<variant>`` time the whole user call (custom op, library
    dispatch, kernels: at M = 1 its Python overhead can exceed the kernel time); rows
    ``<variant>-kernel`` time the seed Triton launcher alone."""
    if not torch.cuda.is_available():
        print("qgemm_benchmark needs a CUDA GPU; none is visible, nothing measured")
        return []
    from kernelloop.feedback import gpu_specs
    from kernelloop.kernels import qgemm as qgemm_kernels
    from kernelloop.library import explain
    from kernelloop.modules import qgemm

    spec, dtype = gpu_specs.current(), torch.float16
    variants = QGEMM_VARIANTS[:1] if opts.quick else QGEMM_VARIANTS  # W4A16 carries the target
    for size in (4096,) if opts.quick else (4096, 8192):
        gen = torch.Generator(device="cuda").manual_seed(0)
        w = torch.randn(size, size, device="cuda", generator=gen) / size**0.5
        w16 = w.to(dtype)
        quantized = {
            name: qgemm.quantize_weight(w, bits, group or size) for name, bits, group, _ in variants
        }
        for m in (1, 16) if opts.quick else (1, 16, 128):
            x = torch.randn(m, size, device="cuda", dtype=dtype, generator=gen)
            case, flops = f"M{m} N{size} K{size} fp16", 2 * m * size * size

            def cublas(x, w16=w16):
                return torch.matmul(x, w16.t())

            t_base = _time(cublas, [x], opts)
            note = _qgemm_bandwidth(w16.numel() * w16.element_size(), t_base, spec)
            yield _row("qgemm", case, "cublas-fp16", t_base, flops, dtype, note=note)
            for name, bits, _, act_bits in variants:
                qw = quantized[name]

                def ours(x, qw=qw, act_bits=act_bits):
                    return qgemm.qlinear(x, qw, act_bits=act_bits)

                def kernel(x, qw=qw, act_bits=act_bits):
                    args = (x, qw.packed, qw.scales, qw.zeros, None)
                    if act_bits == 8:
                        return qgemm_kernels.w8a8_linear(*args, group_size=qw.group_size)
                    return qgemm_kernels.wxa16_linear(*args, bits=qw.bits, group_size=qw.group_size)

                ref = (qgemm.reference_qlinear_w8a8 if act_bits == 8 else qgemm.reference_qlinear)(
                    x, qw
                )
                ran = explain(
                    qgemm.op_name(bits, act_bits), *qgemm.op_tensors(x, qw, None),
                    group_size=qw.group_size, symmetric=qw.symmetric,
                )  # fmt: skip
                impls = ((name, ours, f"; ran: {ran}"), (f"{name}-kernel", kernel, ""))
                for impl, fn, what in impls:
                    with torch.no_grad():  # never time a wrong kernel
                        torch.testing.assert_close(fn(x), ref, atol=2e-2, rtol=2e-2)
                    timed = _time(fn, [x], opts)
                    bandwidth = _qgemm_bandwidth(qw.nbytes, timed, spec)
                    row = _row(
                        "qgemm", case, impl, timed, flops,
                        torch.int8 if act_bits == 8 else dtype,  # peak: INT8 TOPS for W8A8
                        speedup=_speedup(t_base, timed),
                        target=QGEMM_TARGET if name == "w4a16" and m <= 16 else None,
                        baseline="cublas-fp16",
                        note=bandwidth + what,
                    )  # fmt: skip
                    yield row


# --- conv ----------------------------------------------------------------------------------------

CONV_TARGET = 0.8  # of cuDNN's convolution alone (F.conv2d with bias, no activation), per layer


def conv_benchmark(opts: Options) -> Iterator[Row]:
    """``kernelloop.modules.conv`` (conv + bias + fused ReLU) vs cuDNN on ResNet-50's 3x3 layers:
    batch 32, fp16, channels-last, stride 1, padding 1; cuDNN with ``cudnn.benchmark`` on.

    Per layer: cuDNN ``F.conv2d`` (the speedup's strict baseline: it skips the ReLU), cuDNN
    followed by ``F.relu`` (what the fused op replaces), the seed kernel called directly (kernel
    time) and ``conv2d`` through library dispatch (what users get, Python dispatch included).
    FLOPs are 2 * N * OH * OW * C_out * C_in * 9."""
    import math

    import torch.nn.functional as F

    from kernelloop.kernels.conv import conv2d as seed_conv2d
    from kernelloop.library import explain
    from kernelloop.modules import conv2d

    batch, dtype = 32, torch.float16
    layers = [(64, 56), (128, 28), (256, 14), (512, 7)]  # (channels, H = W): conv2_x .. conv5_x
    cfg = {"stride": (1, 1), "padding": (1, 1), "dilation": (1, 1), "activation": "relu"}
    cudnn_benchmark = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    try:
        for channels, size in layers[:2] if opts.quick else layers:
            gen = torch.Generator(device="cuda").manual_seed(0)
            x = torch.randn(batch, channels, size, size, device="cuda", generator=gen)
            x = x.to(dtype).contiguous(memory_format=torch.channels_last)
            w = torch.randn(channels, channels, 3, 3, device="cuda", generator=gen)
            w = (w / math.sqrt(9 * channels)).to(dtype)
            b = torch.randn(channels, device="cuda", generator=gen).to(dtype)

            def cudnn(x, w, b):
                return F.conv2d(x, w, b, padding=1)

            def cudnn_relu(x, w, b):
                return F.relu(F.conv2d(x, w, b, padding=1))

            def seed(x, w, b):
                return seed_conv2d(x, w, b, **cfg)

            def ours(x, w, b):
                return conv2d(x, w, b, padding=1, activation="relu")

            with torch.no_grad():  # never time a wrong kernel
                expected = cudnn_relu(x, w, b)
                for fn in (seed, ours):
                    torch.testing.assert_close(fn(x, w, b), expected, atol=1e-2, rtol=1e-2)
            flops = 2 * batch * size * size * channels * channels * 9
            case = f"N{batch} {channels}->{channels} {size}x{size} k3 fp16 NHWC"
            timed = {f.__name__: _time(f, [x, w, b], opts) for f in (cudnn, cudnn_relu, seed, ours)}
            yield _row("conv", case, "cudnn", timed["cudnn"], flops, dtype)
            yield _row("conv", case, "cudnn+relu", timed["cudnn_relu"], flops, dtype)
            for impl, key, note in (
                ("kernelloop-seed", "seed", "the seed kernel called directly: kernel time"),
                ("kernelloop", "ours", "ran: " + explain("conv2d", x, w, b, **cfg)),
            ):
                vs_relu = _speedup(timed["cudnn_relu"], timed[key])
                yield (
                    _row(
                        "conv", case, impl, timed[key], flops, dtype,
                        speedup=_speedup(timed["cudnn"], timed[key]),
                        target=CONV_TARGET,
                        baseline="cudnn",
                        note=f"{note}; {vs_relu[0]:.2f}x of cudnn+relu",
                    )
                )  # fmt: skip
    finally:
        torch.backends.cudnn.benchmark = cudnn_benchmark


# --- registry ------------------------------------------------------------------------------------

BENCHMARKS: dict[str, Callable[[Options], Iterator[Row]]] = {
    "attention": attention_benchmark,
    "conv": conv_benchmark,
    "qgemm": qgemm_benchmark,
}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("modules", nargs="*", metavar="MODULE", help=f"any of {', '.join(BENCHMARKS)}")
    ap.add_argument("--budget-ms", type=float, default=None, help="timed GPU ms per function")
    ap.add_argument("--warmup-ms", type=float, default=None)
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    ap.add_argument(
        "--quick",
        action="store_true",
        help="fewer cases, for a short device lease: attention non-causal; W4A16 at N=K=4096, "
        "M 1 and 16; conv's first two layers",
    )
    args = ap.parse_args(argv)
    unknown = sorted(set(args.modules) - set(BENCHMARKS))
    if unknown:
        ap.error(f"unknown module(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    if not torch.cuda.is_available():
        print("benchmarks/modules.py needs a CUDA GPU; none is visible, nothing measured")
        return 0

    from kernelloop import settings

    cfg = settings.get()
    opts = Options(
        budget_ms=args.budget_ms if args.budget_ms is not None else cfg.timing_budget_ms,
        warmup_ms=args.warmup_ms if args.warmup_ms is not None else cfg.warmup_ms,
        quick=args.quick,
    )
    env = _environment()
    print(", ".join(f"{k} {v}" for k, v in env.items()))
    rows: list[Row] = []
    _print_header()
    for name in args.modules or list(BENCHMARKS):
        # Each row is printed and saved as soon as it is measured: a run cut short by a device
        # lease or a timeout keeps every number it got.
        for row in BENCHMARKS[name](opts):
            rows.append(row)
            _print([row])
            if args.json:
                report = {**env, "rows": [dataclasses.asdict(r) for r in rows]}
                args.json.write_text(json.dumps(report, indent=2))
    for line in _verdicts(rows):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
