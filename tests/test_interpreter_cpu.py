"""The CPU path, as faithful as the Triton interpreter allows (sandbox/interpreter).

Honest kernels written the way real projects write them must be accepted on CPU, where the bare
interpreter rejects them: a float ``eps`` used as ``eps.to(tl.float32)``, libdevice functions, a
``tl.dtype`` handed to a jit helper, multi-config autotune with heuristics, the driver's device
properties; and store coverage must follow honest host code (``.view``, ``.to(dtype)``, a
zeros-filled output the kernel writes in part, atomics). A kernel the interpreter cannot run at
all is inconclusive (INTERPRETER_UNSUPPORTED), not accepted and not held against the candidate.
The cheats of rows 26, 30 and 31 are in tests/test_cheats.py.

``tests/interpreter_probe.py`` checks each shim directly, in a fresh process (the shims patch
Triton process-wide); with ``KERNELLOOP_COMPILE_TRITON`` naming a Triton fetched by
``scripts/fetch-triton.sh`` (3.6, the GPU machines'), under that Triton's interpreter as well.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from paths import TESTS

from kernelloop.kernelbench.loader import load_one
from kernelloop.sandbox import reasons as R
from kernelloop.sandbox.evaluate import evaluate
from kernelloop.sandbox.interpreter import CPU_LIMITS, libdevice, unsupported_reason

HONEST = sorted(p.stem for p in (TESTS / "candidates").glob("cpu_*.py") if "ptx" not in p.stem)
OTHER_TRITON = os.environ.get("KERNELLOOP_COMPILE_TRITON")

pytestmark = pytest.mark.skipif(
    os.environ.get("TRITON_INTERPRET") != "1", reason="the CPU path: Triton interpreted"
)


def _evaluate(name: str):
    source = (TESTS / "candidates" / f"{name}.py").read_text()
    problem = re.search(r"^# problem: (\S+)", source, re.M).group(1)
    return evaluate(load_one(problem), source, gate="enforce", sandbox="auto")


@pytest.mark.parametrize("name", HONEST)
def test_honest_kernel_is_accepted_on_cpu(name: str):
    verdict = _evaluate(name)
    assert verdict.accepted, f"{name}: {[(r.code, r.message[:300]) for r in verdict.reasons]}"
    checks = verdict.correctness.checks
    assert checks["program_orders"] and checks["autotune_configs"] and checks["store_coverage"]
    assert CPU_LIMITS in verdict.notes  # the verdict says what a CPU run does not prove
    assert verdict.phase_detail.get("candidate.alternates", 0) > 0  # the reversed run happened


def test_inline_ptx_is_inconclusive_on_cpu():
    verdict = _evaluate("cpu_inline_ptx_relu")
    assert not verdict.accepted
    assert verdict.codes == [R.INTERPRETER_UNSUPPORTED], verdict.codes
    assert "not verified on CPU" in verdict.reasons[0].message
    assert "inline_asm" in verdict.reasons[0].message


@pytest.mark.parametrize("triton_dir", [None, OTHER_TRITON] if OTHER_TRITON else [None])
def test_shims_under_the_interpreter(triton_dir: str | None):
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    if triton_dir:
        env["PYTHONPATH"] = os.pathsep.join([triton_dir, env.get("PYTHONPATH", "")])
    run = subprocess.run(
        [sys.executable, str(TESTS / "interpreter_probe.py")],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    probe = json.loads(run.stdout)
    failed = {k: v for k, v in probe["results"].items() if v is not True}
    assert not failed, f"Triton {probe['triton']}: {failed}"


def test_libdevice_symbols_map_to_numpy():
    import numpy as np

    x = np.array([0.25, 1.0, 4.0], dtype=np.float32)
    assert np.allclose(libdevice.implementation("__nv_rsqrtf")(x), 1 / np.sqrt(x))
    assert np.allclose(libdevice.implementation("__nv_tanh")(x), np.tanh(x))
    assert np.allclose(libdevice.implementation("__nv_fdiv_rn")(x, x), 1.0)
    assert libdevice.implementation("__nv_isnand") is np.isnan
    with pytest.raises(NotImplementedError, match="not supported in interpreter mode") as info:
        libdevice.implementation("__nv_cyl_bessel_i0f")
    assert unsupported_reason(RuntimeError("wrapped")) is None
    wrapped = RuntimeError("kernel failed")
    wrapped.__cause__ = info.value
    assert "cyl_bessel_i0f" in unsupported_reason(wrapped)


def test_the_judge_reads_every_alternate_and_the_coverage(tmp_path):
    """checks.py on hand-made trial frames: each alternate is read like the main output (hash
    checked) and compared with the same reference; coverage that was not checked is our defect
    unless the outputs are above the cap; missing checks are not believed."""
    import torch

    from kernelloop.sandbox import checks, tensorio
    from kernelloop.sandbox.interpreter.coverage import MAX_OUTPUT_BYTES
    from kernelloop.sandbox.verdict import TrialResult, Verdict

    (tmp_path / "out").mkdir()
    ref = [torch.arange(6.0)]
    good = tensorio.write(tmp_path / "out" / "t.a.bin", ref)
    wrong = tensorio.write(tmp_path / "out" / "t.b.bin", [torch.zeros(6)])
    covered = {"checked": True, "untracked": [], "note": ""}
    tol = {"atol": 1e-4, "rtol": 1e-4}

    def judge(alternates, coverage=covered, outputs=ref, main_passed=True) -> Verdict:
        verdict = Verdict(False, [], "p", "cpu", "triton", "cpu", "process")
        frame = {"name": "t", "alternates": alternates, "store_coverage": coverage}
        result = TrialResult("t", passed=main_passed)
        checks._check_cpu_runs(verdict, frame, result, tmp_path, outputs, ref, tol)
        return verdict

    def alt(label, name, digest):
        return {"label": label, "output": f"out/{name}.bin", "output_sha256": digest}

    assert judge([alt("order:reversed", "t.a", good)]).codes == []
    assert judge([alt("order:reversed", "t.b", wrong)]).codes == [R.PROGRAM_ORDER_DEPENDENT]
    assert judge([alt("autotune:config 1 (k: B: 2)", "t.b", wrong)]).codes == [
        R.AUTOTUNE_CONFIG_WRONG
    ]
    assert judge([alt("order:reversed", "t.b", wrong)], main_passed=False).codes == []
    assert judge([alt("order:reversed", "t.a", wrong)]).codes == [R.CHANNEL_TAMPERED]
    assert judge([alt("other:x", "t.a", good)]).codes == [R.CHANNEL_TAMPERED]
    assert judge([]).codes == [R.CHANNEL_TAMPERED]  # no reversed-order run on a trial's call
    untracked = {**covered, "untracked": [{"output": 0, "elements": 3, "numel": 6, "run": "call"}]}
    assert judge([alt("order:reversed", "t.a", good)], untracked).codes == [R.NOT_WRITTEN_BY_KERNEL]
    unchecked = {"checked": False, "untracked": [], "note": "internal error"}
    assert judge([alt("order:reversed", "t.a", good)], unchecked).codes == [R.EVALUATOR_ERROR]
    big = [torch.zeros(MAX_OUTPUT_BYTES // 4 + 1)]
    verdict = judge([alt("order:reversed", "t.a", good)], unchecked, outputs=big)
    assert verdict.codes == [] and "store coverage not checked" in verdict.notes[0]
