"""Nsight Compute metric sets: the ``default`` set and the extras the Judge may ask for.

Kept apart from ``ncu.py`` (the adapter to the binary) so the policy of what to measure can be
read on its own.
"""

from __future__ import annotations

from collections.abc import Iterable

# --- metric sets -----------------------------------------------------------------------------
# Names as in NVIDIA's "Nsight Compute Kernel Profiling Guide" (Metrics Reference) and the
# section files ncu ships (SpeedOfLight, MemoryWorkloadAnalysis, Occupancy, LaunchStats,
# ComputeWorkloadAnalysis, WarpStateStats). A name ncu does not know on the profiled chip makes it
# refuse the whole run; profile_candidate drops such names, retries, and lists them as missing.

# Warp stalls: the WarpStateStats family, "warp cycles per issued instruction spent in this
# stall". Hardware counters (no PC-sampling pass) in units that compare across kernels.
_STALL = "smsp__average_warps_issue_stalled_{}_per_issue_active.ratio"
DEFAULT_STALLS = (
    "long_scoreboard",  # waiting on L1TEX: global/local memory
    "short_scoreboard",  # waiting on MIO: shared memory, special math
    "barrier",  # __syncthreads / tl barriers
    "mio_throttle",  # MIO queue full (shared-memory instruction pressure)
    "math_pipe_throttle",  # a math pipe is saturated
    "not_selected",  # eligible but another warp issued (plenty of parallelism)
    "wait",  # fixed-latency dependencies
)
ALL_STALLS = (
    *DEFAULT_STALLS,
    "branch_resolving",
    "dispatch_stall",
    "drain",
    "imc_miss",
    "lg_throttle",
    "membar",
    "misc",
    "no_instruction",
    "selected",
    "sleeping",
    "tex_throttle",
)

DEFAULT = (
    "gpu__time_duration.sum",
    # speed of light
    "sm__throughput.avg.pct_of_peak_sustained_elapsed",
    "gpu__compute_memory_throughput.avg.pct_of_peak_sustained_elapsed",
    "dram__throughput.avg.pct_of_peak_sustained_elapsed",
    "dram__bytes_read.sum",
    "dram__bytes_write.sum",
    # caches
    "l1tex__t_sector_hit_rate.pct",
    "l1tex__throughput.avg.pct_of_peak_sustained_active",
    "lts__t_sector_hit_rate.pct",
    "lts__throughput.avg.pct_of_peak_sustained_elapsed",
    # occupancy: achieved, theoretical, and what limits it (blocks per SM under each limit)
    "sm__warps_active.avg.pct_of_peak_sustained_active",
    "sm__maximum_warps_per_active_cycle_pct",
    "launch__occupancy_limit_registers",
    "launch__occupancy_limit_shared_mem",
    "launch__occupancy_limit_warps",
    "launch__occupancy_limit_blocks",
    # launch configuration and resources
    "launch__registers_per_thread",
    "launch__shared_mem_per_block_static",
    "launch__shared_mem_per_block_dynamic",
    "launch__grid_size",
    "launch__block_size",
    # pipes
    "sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active",
    "sm__pipe_fma_cycles_active.avg.pct_of_peak_sustained_active",
    *(_STALL.format(r) for r in DEFAULT_STALLS),
)

EXTRA_SETS: dict[str, tuple[str, ...]] = {
    # Coalescing (sectors per request: 4 is a fully used 128-byte line of fp32 loads), L2 and DRAM
    # traffic in sectors, shared-memory bank conflicts.
    "memory": (
        "l1tex__t_requests_pipe_lsu_mem_global_op_ld.sum",
        "l1tex__t_sectors_pipe_lsu_mem_global_op_ld.sum",
        "l1tex__t_requests_pipe_lsu_mem_global_op_st.sum",
        "l1tex__t_sectors_pipe_lsu_mem_global_op_st.sum",
        "lts__t_sectors_srcunit_tex_op_read.sum",
        "lts__t_sectors_srcunit_tex_op_write.sum",
        "lts__t_bytes.sum",
        "dram__sectors_read.sum",
        "dram__sectors_write.sum",
        "dram__bytes.sum.per_second",
        "l1tex__data_bank_conflicts_pipe_lsu_mem_shared_op_ld.sum",
        "l1tex__data_bank_conflicts_pipe_lsu_mem_shared_op_st.sum",
        "l1tex__data_pipe_lsu_wavefronts_mem_shared.sum",
    ),
    # Pipe utilisation and instruction mix (FP32 FLOPs = 2 * ffma + fadd + fmul).
    "compute": (
        "sm__pipe_alu_cycles_active.avg.pct_of_peak_sustained_active",
        "sm__pipe_fp64_cycles_active.avg.pct_of_peak_sustained_active",
        "sm__pipe_shared_cycles_active.avg.pct_of_peak_sustained_active",
        "sm__pipe_tensor_cycles_active.avg.pct_of_peak_sustained_active",
        "sm__inst_executed_pipe_lsu.avg.pct_of_peak_sustained_active",
        "sm__inst_executed_pipe_xu.avg.pct_of_peak_sustained_active",
        "smsp__issue_active.avg.pct_of_peak_sustained_active",
        "smsp__inst_executed.sum",
        "sm__sass_thread_inst_executed_op_ffma_pred_on.sum",
        "sm__sass_thread_inst_executed_op_fadd_pred_on.sum",
        "sm__sass_thread_inst_executed_op_fmul_pred_on.sum",
    ),
    "occupancy": (
        "sm__warps_active.avg.per_cycle_active",
        "smsp__warps_eligible.avg.per_cycle_active",
        "launch__waves_per_multiprocessor",
        "launch__thread_count",
        "smsp__warps_launched.sum",
    ),
    "stalls": (
        "smsp__average_warp_latency_per_inst_issued.ratio",
        "smsp__issue_active.avg.pct_of_peak_sustained_active",
        *(_STALL.format(r) for r in ALL_STALLS[len(DEFAULT_STALLS) :]),
    ),
}
SETS: dict[str, tuple[str, ...]] = {"default": DEFAULT, **EXTRA_SETS}


def resolve_metrics(spec: str | Iterable[str] = "default") -> list[str]:
    """Metric names for ``spec``: set names and/or metric names, comma-separated or a list.

    An extra set extends the default one (the Judge reads both together); a metric name (anything
    with ``__`` in it) is added as given. Order is kept, duplicates dropped.
    """
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out: list[str] = list(DEFAULT)
    for item in (i.strip() for i in items):
        if not item or item == "default":
            continue
        if item in EXTRA_SETS:
            out += EXTRA_SETS[item]
        elif "__" in item:
            out.append(item)
        else:
            raise ValueError(
                f"unknown metric set {item!r}: choose from {', '.join(SETS)} or name a metric "
                "(e.g. dram__bytes_read.sum)"
            )
    return list(dict.fromkeys(out))
