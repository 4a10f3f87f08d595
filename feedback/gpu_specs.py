"""Peak numbers of the GPUs kernelloop meets, for rooflines and for rejecting impossible timings.

Figures are dense (no 2:4 sparsity) peaks from NVIDIA's public datasheets and architecture
whitepapers, at boost clock. Where a datasheet gives two tensor rates for one input type (GeForce
cards run FP16 with FP32 accumulation at half the FP16-accumulate rate), the higher one is kept:
the roofline floor must be a true lower bound on time, so a peak may err high, never low.
Import needs no GPU; only ``current()`` asks torch about the device.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_MIB = 1024 * 1024
_KIB = 1024


@dataclass(frozen=True)
class GpuSpec:
    name: str
    sms: int
    boost_clock_mhz: float
    fp32_tflops: float  # CUDA cores, no tensor cores
    tf32_tflops: float  # tensor cores; equals fp32 where there are no TF32 tensor cores (T4)
    fp16_tflops: float
    bf16_tflops: float
    fp8_tflops: float | None  # None: no FP8 tensor cores (before Ada/Hopper)
    int8_tops: float
    mem_bandwidth_gbs: float  # DRAM, GB/s (10^9 bytes)
    l2_bytes: int
    smem_per_sm_bytes: int
    regs_per_sm: int
    compute_capability: tuple[int, int]
    generic: bool = False  # True: estimated from device attributes, not a datasheet


_SPECS: dict[str, GpuSpec] = {
    s.name: s
    for s in [
        # Hopper: same SXM compute for H100 and H200; H200 has HBM3e (4.8 TB/s) and the 60 MiB of
        # L2 the device reports. H100 PCIe: 114 SMs, lower clocks, HBM2e.
        GpuSpec("H200 SXM", 132, 1980, 67, 494.5, 989.5, 989.5, 1979, 1979, 4800,
                60 * _MIB, 228 * _KIB, 65536, (9, 0)),
        GpuSpec("H100 SXM", 132, 1980, 67, 494.5, 989.5, 989.5, 1979, 1979, 3350,
                50 * _MIB, 228 * _KIB, 65536, (9, 0)),
        GpuSpec("H100 PCIe", 114, 1755, 51, 378, 756, 756, 1513, 1513, 2000,
                50 * _MIB, 228 * _KIB, 65536, (9, 0)),
        # Ampere GA100: the 40 GB (HBM2) and 80 GB (HBM2e) parts differ in bandwidth only.
        GpuSpec("A100 40GB", 108, 1410, 19.5, 156, 312, 312, None, 624, 1555,
                40 * _MIB, 164 * _KIB, 65536, (8, 0)),
        GpuSpec("A100 80GB SXM", 108, 1410, 19.5, 156, 312, 312, None, 624, 2039,
                40 * _MIB, 164 * _KIB, 65536, (8, 0)),
        GpuSpec("A100 80GB PCIe", 108, 1410, 19.5, 156, 312, 312, None, 624, 1935,
                40 * _MIB, 164 * _KIB, 65536, (8, 0)),
        # Ada AD102/AD104 data-centre parts (full-rate FP32 accumulation).
        GpuSpec("L40S", 142, 2520, 91.6, 183, 362, 362, 733, 733, 864,
                96 * _MIB, 100 * _KIB, 65536, (8, 9)),
        GpuSpec("L4", 58, 2040, 30.3, 60, 121, 121, 242.5, 242.5, 300,
                48 * _MIB, 100 * _KIB, 65536, (8, 9)),
        # A10G (AWS): NVIDIA publishes no datasheet. torch reports 80 SMs; rates are the A10's
        # per-SM-per-clock figures (72 SMs at 1695 MHz: 31.2/62.5/125/250) scaled to 80 at 1710.
        GpuSpec("A10G", 80, 1710, 35.0, 70.0, 140.1, 140.1, None, 280.2, 600,
                6 * _MIB, 100 * _KIB, 65536, (8, 6)),
        # GeForce (Ada, Ampere whitepapers): FP16/FP8 at FP16-accumulate rate; BF16 and TF32
        # exist only with FP32 accumulation, at half that.
        GpuSpec("RTX 4090", 128, 2520, 82.6, 82.6, 330.3, 165.2, 660.6, 660.6, 1008,
                72 * _MIB, 100 * _KIB, 65536, (8, 9)),
        GpuSpec("RTX 3090", 82, 1695, 35.6, 35.6, 142, 71, None, 284, 936,
                6 * _MIB, 100 * _KIB, 65536, (8, 6)),
        # Turing: no TF32 or BF16 tensor cores, so those run at the FP32 rate.
        GpuSpec("T4", 40, 1590, 8.1, 8.1, 65, 8.1, None, 130, 320,
                4 * _MIB, 64 * _KIB, 65536, (7, 5)),
    ]
}  # fmt: skip

# Device names as torch reports them -> entry. Order matters: the first pattern that matches wins,
# and variants we have no figures for (H100 NVL, GH200, A100 PCIe 80GB vs 40GB, ...) must not fall
# into a neighbour's entry: a wrong bandwidth would move the floor that rejects timings.
_PATTERNS: list[tuple[str, str]] = [
    (r"\bH200\b(?!.*NVL)", "H200 SXM"),
    (r"\bH100\b.*\bPCIe\b", "H100 PCIe"),
    (r"\bH100\b.*\b(SXM|HBM3)\b", "H100 SXM"),
    (r"\bA100\b(?=.*80GB)(?=.*PCIe)", "A100 80GB PCIe"),
    (r"\bA100\b.*80GB", "A100 80GB SXM"),
    (r"\bA100\b.*40GB", "A100 40GB"),
    (r"\bL40S\b", "L40S"),
    (r"\bL4\b", "L4"),
    (r"\bA10G\b", "A10G"),
    (r"\bRTX 4090\b(?!.*\b(D|Laptop)\b)", "RTX 4090"),
    (r"\bRTX 3090\b(?!.*\bTi\b)", "RTX 3090"),
    (r"\bT4\b", "T4"),
]


def lookup(name: str) -> GpuSpec | None:
    """The datasheet entry for a device name (``torch.cuda.get_device_name``), or None."""
    for pattern, key in _PATTERNS:
        if re.search(pattern, name, flags=re.IGNORECASE):
            return _SPECS[key]
    return None


def current(device: int = 0) -> GpuSpec:
    """The spec of a visible CUDA device; unknown models get a ``generic=True`` estimate."""
    import torch

    if not torch.cuda.is_available():
        raise RuntimeError("no CUDA device is visible; use gpu_specs.lookup(name) on a CPU machine")
    props = torch.cuda.get_device_properties(device)
    return lookup(props.name) or _generic(props)


# FP16 dense tensor FLOP per SM per clock, by architecture (A100: 312e12 / (108 * 1.41e9) = 2048).
_TENSOR_FLOP_PER_SM_CLK = {10: 8192, 9: 4096, 8: 1024}


def _generic(props) -> GpuSpec:
    """Estimates from device attributes, erring high so that a floor built on them stays a floor.

    Unknown clock: 2.1 GHz (above every shipping boost clock). Unknown memory: 10 TB/s (above
    every GPU today). Ampere onwards has 128 FP32 lanes per SM (A100 has 64; overestimated).
    """
    cc = (props.major, props.minor)
    sms = props.multi_processor_count
    clock_mhz = (getattr(props, "clock_rate", 0) or 2_100_000) / 1000  # torch gives kHz
    mem_khz, bus_bits = (
        getattr(props, "memory_clock_rate", 0),
        getattr(props, "memory_bus_width", 0),
    )
    bw_gbs = 2 * mem_khz * 1e3 * bus_bits / 8 / 1e9 if mem_khz and bus_bits else 10_000.0  # DDR
    per_clk = sms * clock_mhz * 1e6 / 1e12  # TFLOP/s for 1 FLOP per SM per clock
    fp32 = per_clk * 256  # 128 FMA lanes x 2 FLOP
    fp16 = per_clk * (2048 if cc == (8, 0) else _TENSOR_FLOP_PER_SM_CLK.get(min(cc[0], 10), 1024))
    return GpuSpec(
        name=props.name, sms=sms, boost_clock_mhz=clock_mhz, fp32_tflops=fp32,
        tf32_tflops=fp16 / 2 if cc >= (8, 0) else fp32, fp16_tflops=fp16,
        bf16_tflops=fp16 if cc >= (8, 0) else fp32,
        fp8_tflops=2 * fp16 if cc >= (8, 9) else None, int8_tops=2 * fp16,
        mem_bandwidth_gbs=bw_gbs, l2_bytes=getattr(props, "L2_cache_size", 0),
        smem_per_sm_bytes=getattr(props, "shared_memory_per_multiprocessor", 0),
        regs_per_sm=getattr(props, "regs_per_multiprocessor", 65536),
        compute_capability=cc, generic=True,
    )  # fmt: skip


def peak_flops(spec: GpuSpec, dtype, tensor_cores: bool = True) -> float:
    """Peak FLOP/s for math on ``dtype`` inputs (a ``torch.dtype``; read by name, torch not needed).

    float32 -> TF32 tensor cores (or FP32 CUDA cores); float16/bfloat16 -> their tensor rate (or
    2x FP32 for packed half2 math); float8 -> FP8, falling back to FP16 where the GPU has no FP8;
    int8/uint8 -> INT8 TOPS. float64 and anything else -> the FP32 rate, an upper bound for them.
    """
    kind = str(dtype).removeprefix("torch.")
    if kind == "float32":
        tflops = spec.tf32_tflops if tensor_cores else spec.fp32_tflops
    elif kind in ("float16", "half", "bfloat16"):
        rate = spec.bf16_tflops if kind == "bfloat16" else spec.fp16_tflops
        tflops = rate if tensor_cores else 2 * spec.fp32_tflops
    elif kind.startswith("float8"):
        tflops = (spec.fp8_tflops or spec.fp16_tflops) if tensor_cores else 2 * spec.fp32_tflops
    elif kind in ("int8", "uint8"):
        tflops = spec.int8_tops if tensor_cores else 4 * spec.fp32_tflops  # dp4a
    else:
        tflops = spec.fp32_tflops
    return tflops * 1e12


def peak_bandwidth(spec: GpuSpec) -> float:
    """Peak DRAM bandwidth in bytes/s."""
    return spec.mem_bandwidth_gbs * 1e9
