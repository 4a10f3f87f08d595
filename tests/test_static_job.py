"""Triton static resources on a CPU machine: launches recorded under the interpreter, compiled
for sm_90 in a sandbox worker (the end to end path: tests/test_profile_cli.py)."""

from __future__ import annotations

import pytest

from kernelloop.feedback.compile_check import Launch
from kernelloop.sandbox import checks, guards, static_job
from kernelloop.sandbox.verdict import Verdict


def _launch(**constexprs) -> Launch:
    sig = (("x_ptr", "*fp32"), ("n", "i32"), ("stride", 1))
    return Launch("m", "k", "m.py", sig, tuple(constexprs.items()), 4, None)


def test_a_launch_record_is_json_and_says_what_it_cannot_carry():
    import triton.language as tl

    rec = guards.launch_record(_launch(BLOCK=1024, FAST=True))
    assert rec == {
        "kernel": "k",
        "args": {"x_ptr": "*fp32", "n": "i32", "stride": 1, "BLOCK": 1024, "FAST": True,
                 "num_warps": 4},
        "unsupported": "",
    }  # fmt: skip
    odd = guards.launch_record(_launch(DTYPE=tl.float16))
    assert "constexpr 'DTYPE' is a" in odd["unsupported"]


def test_signatures_take_the_first_compilable_launch_of_each_kernel():
    launches = [
        {"kernel": "a", "args": {"BLOCK": 1}, "unsupported": "constexpr 'D' is a dtype"},
        {"kernel": "a", "args": {"BLOCK": 2}, "unsupported": ""},
        {"kernel": "a", "args": {"BLOCK": 3}, "unsupported": ""},
        {"kernel": "b", "args": {"BLOCK": 4}, "unsupported": ""},
    ]
    assert static_job.signatures(launches) == {"a": {"BLOCK": 2}, "b": {"BLOCK": 4}}


@pytest.mark.parametrize(
    "kernels, kept",
    [
        ([{"kernel": "k", "args": {"n": "i32"}}], 1),
        ([{"kernel": 3, "args": {}}, "junk", {"kernel": "k", "args": []}], 0),
        ("not a list", 0),
        ([{"kernel": "k", "args": {}}] * 100, 32),
    ],
    ids=["well-formed", "malformed", "not-a-list", "capped"],
)
def test_reported_launches_are_kept_only_in_shape(kernels, kept):
    """They come from the candidate's process: feedback, filtered, never evidence."""
    v = Verdict(False, [], "p", "cpu", "triton", "cpu", "process")
    checks._launch_records(v, [{"type": "launches", "kernels": kernels}])
    assert len(v.launches) == kept and not v.reasons
    assert Verdict.from_dict(v.to_dict()).launches == v.launches


@pytest.mark.slow
def test_cpu_compile_of_the_matmul_solution_agrees_with_the_h100_recording():
    """The same kernel and tile (128x128x32, 8 warps, 3 stages) as the ncu recording from an
    H100 (tests/fixtures/ncu/ncu-h100-14_matmul_square.csv: 188 registers/thread, 65536 B of
    dynamic shared memory, Triton 3.6): launched here at the CPU size under the interpreter and
    compiled for sm_90 by this machine's Triton. Shared memory is the tile's, exactly; registers
    may move a little between Triton versions."""
    from pathlib import Path

    from kernelloop.kernelbench.loader import load_one, solution_path
    from kernelloop.sandbox.evaluate import evaluate

    problem = load_one("level1/14_matmul_square")
    source = Path(solution_path(problem)).read_text()
    verdict = evaluate(problem, source, size="cpu")
    # one record per specialisation: the main size, and a hold-out size that divides less
    assert verdict.accepted and {r["kernel"] for r in verdict.launches} == {"_matmul_kernel"}
    (res,) = static_job.compile_recorded(source, verdict.launches)
    assert res.source == "ptxas-log", res.notes
    assert res.shared_bytes == 65536 and res.spills is False
    assert abs(res.registers_per_thread - 188) <= 16, res.registers_per_thread
