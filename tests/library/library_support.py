"""What the library tests share: a tiny op (``test_library.scale``: x * 2) registered once, its
problem file, a pinned fake environment, fixtures, and hand-built verdicts with real statistics."""

from __future__ import annotations

import dataclasses
import sys

from kernelloop.library import ops
from kernelloop.library.manifest import Manifest
from kernelloop.library.promote import promote
from kernelloop.sandbox.stats import bootstrap_ratio, summarize
from kernelloop.sandbox.verdict import TimingResult, Verdict

OP = "test_library.scale"  # the registry is global: a name no module will use
PROBLEM_ID = "test_library_scale"
FAKE_GPU = "Fake GPU 80GB"
FAKE_ENV = {
    "gpu": FAKE_GPU,
    "compute_capability": None,
    "driver": "999.1",
    "cuda": "12.8",
    "torch": "2.13.0",
    "triton": "3.9.0",
    "python": "3.12.0",
}

PROBLEM_SOURCE = '''"""Scale by two."""

import torch
import torch.nn as nn

rows = 8
n = 4096

SIZES = {"cpu": {"n": 100}}


class Model(nn.Module):
    def __init__(self, factor):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return x * self.factor


def get_inputs():
    return [torch.randn(rows, n)]


def get_init_inputs():
    return [2.0]
'''

# The entry computes the same values as the reference; it records each call, which is how the
# dispatch test proves that the entry, not the reference, ran.
ENTRY_SOURCE = """import torch

CALLS = []


class ModelNew(torch.nn.Module):
    def __init__(self, factor):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        CALLS.append(tuple(x.shape))
        return x * self.factor
"""

ops.register(
    ops.OpSpec(
        name=OP,
        problems=(PROBLEM_ID,),
        reference=lambda x, factor=2.0: x * factor,
        seed=lambda x, factor=2.0: x * factor,
        init_args=lambda config: [config.get("factor", 2.0)],
        config_from_init=lambda init: {"factor": init[0]},
        bucket=lambda tensors, config: f"n{ops.pow2_bucket(tensors[0].shape[-1])}",
    )
)


# --- builders (the fixtures are in conftest.py) ---------------------------------------------------
def _samples(center: float, spread: float = 0.01, n: int = 21) -> list[float]:
    return [center * (1 + spread * (i - n // 2) / (n // 2)) for i in range(n)]


def make_verdict(
    *,
    candidate_ms: float = 1.0,
    eager_ms: float = 2.0,
    compile_ms: float | None = 1.6,
    timed: bool = True,
    size: str = "gpu",
) -> Verdict:
    timing = None
    if timed:
        cand, eager = _samples(candidate_ms), _samples(eager_ms)
        comp = _samples(compile_ms) if compile_ms is not None else None
        timing = TimingResult(
            gpu=FAKE_GPU,
            candidate=summarize(cand),
            eager=summarize(eager),
            compiled=summarize(comp) if comp else None,
            speedup_eager=bootstrap_ratio(eager, cand, n_boot=200),
            speedup_compile=bootstrap_ratio(comp, cand, n_boot=200) if comp else None,
            order=["candidate", "eager", "compiled"],
        )
    return Verdict(
        accepted=True,
        reasons=[],
        problem_id=PROBLEM_ID,
        size=size,
        backend="triton",
        device=FAKE_GPU if timed else "cpu (Triton interpreter)",
        sandbox="process",
        timing=timing,
        timing_note=None if timed else "no CUDA GPU here: correctness only, timing skipped",
    )


def promoted(lib, problem, **verdict_args) -> Manifest:
    return promote(
        make_verdict(**verdict_args),
        ENTRY_SOURCE,
        problem,
        provenance={"run_id": "run-1", "candidate_id": "c1"},
        library=lib,
    )


def entry_module(entry_id: str):
    return sys.modules[f"kernelloop_entry_{entry_id.replace('-', '_')}"]


def with_env(lib, m, **env) -> Manifest:
    """The entry as if it had been verified in another environment."""
    return lib.update(dataclasses.replace(m, env={**m.env, **env}))
