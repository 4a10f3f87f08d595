"""``triton.autotune``, ``triton.heuristics`` and ``triton.runtime.driver.active`` on a CPU.

Interpreted, an autotuner with two or more configs asks the active driver for a benchmarker and
finds none ("0 active drivers"); Triton's tutorials ask the same driver for the SM count. A CPU
stand-in answers with an H100's numbers, and its benchmarker runs each config once (so every
config's code path executes on the real arguments) and reports the same time for all: the
autotuner keeps its first (pruned) config, deterministically. A GPU autotuner may keep any of
them, so each config is also run on its own (``forced_config``) and judged (threat row 31).
"""

from __future__ import annotations

import sys

# What Triton's CUDA driver reports for an H100 SXM (utils.get_device_properties).
H100_PROPERTIES = {
    "max_shared_mem": 232448,  # bytes per block, opt-in
    "max_num_regs": 65536,
    "multiprocessor_count": 132,
    "warpSize": 32,
    "sm_clock_rate": 1980000,  # kHz
    "mem_clock_rate": 2619000,  # kHz
    "mem_bus_width": 5120,  # bits
}


def rejected_when_compiled(exc: BaseException) -> bool:
    """A config a GPU autotuner would skip (as CompileTimeAssertionFailure or OutOfResources)
    rather than fail on: interpreted, ``tl.static_assert`` is a plain Python assert."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, AssertionError) or type(exc).__name__ == "OutOfResources":
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def benchmark(kernel_call, quantiles=None, **_options):
    """Run one config once; the same time for every config that runs (infinite for one a GPU
    compile would reject), so the autotuner's choice is its first config, on every run."""
    try:
        kernel_call()
        time_ms = 1.0
    except Exception as exc:
        if not rejected_when_compiled(exc):
            raise
        time_ms = float("inf")
    return [time_ms] * len(quantiles) if quantiles else time_ms


class _Utils:
    @staticmethod
    def get_device_properties(device=0) -> dict:
        return dict(H100_PROPERTIES)


class CpuDriver:
    """What ``triton.runtime.driver.active`` answers under the interpreter: an H100 at device 0
    whose tensors live on the CPU."""

    utils = _Utils()

    def is_active(self) -> bool:
        return True

    def get_current_device(self) -> int:
        return 0

    def set_current_device(self, device) -> None:
        pass

    def get_current_stream(self, device=None) -> int:
        return 0

    def get_current_target(self):
        from triton.backends.compiler import GPUTarget

        return GPUTarget("cuda", 90, 32)

    def get_active_torch_device(self):
        import torch

        return torch.device("cpu")

    def get_benchmarker(self):
        return benchmark


class _Seen:
    """The multi-config autotuners one call ran, with their pruned configs, for labels."""

    def __init__(self) -> None:
        self.configs: dict[int, tuple[str, list[str]]] = {}

    def clear(self) -> None:
        self.configs.clear()

    def count(self) -> int:
        return max((len(c) for _, c in self.configs.values()), default=0)

    def label(self, index: int) -> str:
        parts = [
            f"{name}: {configs[min(index, len(configs) - 1)]}"
            for name, configs in self.configs.values()
        ]
        return f"autotune:config {index} ({'; '.join(parts)})"[:200]


SEEN = _Seen()


def install(state, patch) -> None:
    from triton.runtime import autotuner

    config = sys.modules["triton.runtime.driver"].driver
    stand_in = CpuDriver()
    # `active` would otherwise look for a GPU driver (and `default` raise "0 active drivers").
    patch(config, "_default", stand_in, "triton.runtime.driver.driver")
    patch(config, "_active", stand_in, "triton.runtime.driver.driver")

    run = autotuner.Autotuner.run

    def run_with_config(self, *args, **kwargs):
        if len(self.configs) <= 1:
            return run(self, *args, **kwargs)
        self.nargs = dict(zip(self.arg_names, args, strict=False))
        pruned = self.prune_configs(kwargs)  # what a GPU autotuner would benchmark
        name = getattr(self.base_fn, "__name__", "kernel")
        SEEN.configs[id(self)] = (name, [str(c) for c in pruned])
        if state.forced_config is None or len(pruned) <= 1:
            return run(self, *args, **kwargs)
        kept, self.configs = self.configs, [pruned[min(state.forced_config, len(pruned) - 1)]]
        try:  # with one config the autotuner runs it directly, caching nothing
            return run(self, *args, **kwargs)
        finally:
            self.configs = kept

    patch(autotuner.Autotuner, "run", run_with_config)
