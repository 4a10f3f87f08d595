"""`kernelloop profile` on a CPU machine: static resources, roofline, and what was skipped.

The GPU branch is exercised with the hardware adapters patched (a synthetic ncu report from
tests/fixtures/ncu/, SYNTHETIC: written from the documented --csv --page raw format, to be
replaced by recorded output; a verdict without timing); tests/gpu/test_ncu_gpu.py runs it for real.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from paths import TESTS
from typer.testing import CliRunner

from kernelloop import profile_cli
from kernelloop.cli import app

runner = CliRunner()
FIXTURES = TESTS / "fixtures" / "ncu"
TRITON = "kernelbench/problems/level1/solutions/01_relu.py"
CUDA = "examples/relu_cuda.py"


def _kl(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kernelloop.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


@pytest.fixture(autouse=True)
def _no_gpu(monkeypatch):
    monkeypatch.setattr(profile_cli, "_has_gpu", lambda: False)


def test_triton_solution_on_cpu_shows_static_roofline_and_skips(repo, monkeypatch):
    """The CPU run (interpreter, sandboxed) tells the launch's argument types; a sandbox worker
    compiles the kernel for sm_90 with them: ptxas's registers, spills and shared memory."""
    monkeypatch.chdir(repo)
    result = runner.invoke(app, ["profile", "level1/01_relu", TRITON])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "skipped: no GPU: Nsight Compute, NVML and timing skipped" in out
    assert "roofline on H100 SXM (float32" in out
    assert "memory-bound at the roofline" in out  # relu at 8192 x 32768: 2 GiB, no FLOPs
    assert "verdict: accepted" in out and "Judge summary" in out
    assert "argument types and constexprs of its launch at size cpu" in out
    result = runner.invoke(app, ["profile", "level1/01_relu", TRITON, "--json"])
    doc = json.loads(result.stdout)
    (static,) = doc["static"]
    assert static["kernel"] == "_relu_kernel" and static["arch"] == "sm_90a"
    assert static["source"] == "ptxas-log", static["notes"]
    assert 0 < static["registers_per_thread"] <= 64 and static["spill_stores_bytes"] == 0
    assert "resources of _relu_kernel (ptxas-log, sm_90a)" in doc["summary"]


def test_triton_without_a_run_says_its_resources_need_one(repo, monkeypatch):
    monkeypatch.chdir(repo)
    result = runner.invoke(app, ["profile", "level1/01_relu", TRITON, "--no-eval"])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "Triton resources (--no-eval): a kernel's argument types come from a run" in out
    assert "needs a launch to know argument types" in out and "verdict:" not in out


def test_cuda_example_on_cpu_reports_nvrtc_resources(repo):
    proc = _kl("profile", "level1/01_relu", CUDA, "--json", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)  # the whole of stdout is one JSON document
    assert doc["schema_version"] == profile_cli.SCHEMA_VERSION and doc["backend"] == "cuda"
    assert doc["gpu"] is False and doc["ncu"] is None and doc["verdict"] is None
    assert doc["skipped"] == [profile_cli.NO_GPU]
    (static,) = doc["static"]
    assert static["kernel"] == "relu_f32" and static["arch"] == "sm_90"
    if static["source"] != "ptxas-log":
        pytest.skip(f"this NVRTC prints no ptxas resource lines: {static['notes']}")
    assert static["registers_per_thread"] > 0 and static["spill_stores_bytes"] == 0
    roof = doc["roofline"]
    assert roof["gpu"] == "H100 SXM" and roof["bytes"] == 2 * 8192 * 32768 * 4
    assert roof["bound_at_roofline"] == "memory" and roof["floor_ms"] > 0.5


def test_size_and_set_change_the_roofline(repo, monkeypatch):
    monkeypatch.chdir(repo)
    result = runner.invoke(
        app,
        ["profile", "level1/14_matmul_square", TRITON.replace("01_relu", "14_matmul_square"),
         "--set", "N=1024", "--json", "--no-eval"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["roofline"]["flops"] == 2 * 1024**3 and doc["roofline"]["flops_source"] == "counted"
    assert doc["roofline"]["bound_at_roofline"] == "compute"


@pytest.mark.parametrize(
    "args, message",
    [
        (["profile", "level1/01_relu", "missing.py"], "no such candidate file"),
        (["profile", "level1/01_relu", TRITON, "--metrics", "cache"], "unknown metric set"),
        (["profile", "level1/01_relu", TRITON, "--set", "nope=1"], "no module constant"),
    ],
    ids=["missing-candidate", "unknown-set", "unknown-constant"],
)
def test_usage_errors_exit_two(repo, monkeypatch, args, message):
    monkeypatch.chdir(repo)
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_gpu_branch_prints_metrics_and_the_judge_summary(repo, monkeypatch, tmp_path):
    """The GPU path with its adapters patched: evaluate -> verdict, ncu -> the synthetic
    matmul fixture report; the Judge summary is the real one."""
    from kernelloop.feedback import gpu_specs, ncu
    from kernelloop.sandbox import evaluate as evaluate_mod
    from kernelloop.sandbox.verdict import Verdict

    monkeypatch.chdir(repo)
    monkeypatch.setattr(profile_cli, "_has_gpu", lambda: True)
    monkeypatch.setattr(profile_cli, "_gpu_arch", lambda: "sm_90")
    monkeypatch.setattr(profile_cli, "_spec", lambda gpu: gpu_specs.lookup("NVIDIA H100 80GB HBM3"))
    verdict = Verdict(
        accepted=True,
        reasons=[],
        problem_id="level1/14_matmul_square",
        size="gpu",
        backend="triton",
        device="NVIDIA H100 80GB HBM3",
        sandbox="process",
        timing_note="timing left out of this test",
    )
    monkeypatch.setattr(evaluate_mod, "evaluate", lambda *a, **k: verdict)
    text = (FIXTURES / "matmul_launches.csv").read_text()
    report = ncu.parse_csv(text, requested=ncu.resolve_metrics())
    seen = {}
    monkeypatch.setattr(ncu, "profile_candidate", lambda *a, **k: seen.update(k) or report)
    raw = tmp_path / "ncu.csv"
    candidate = TRITON.replace("01_relu", "14_matmul_square")
    args = ["profile", "level1/14_matmul_square", candidate, "--metrics", "memory"]
    result = runner.invoke(app, [*args, "--raw-out", str(raw)])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "dram__bytes_read.sum" in out and "_matmul_kernel" in out
    assert "Judge summary" in out and "DRAM throughput" in out  # summary read the aggregate
    assert "missing metrics:" in out  # the fixture lacks most of the default set
    assert raw.read_text() == text and seen["metrics"] == "memory"

    result = runner.invoke(app, [*args, "--json"])
    doc = json.loads(result.stdout)
    assert doc["ncu"]["kernels"][0]["name"] == "_matmul_kernel" and doc["summary"]
    assert doc["verdict"]["accepted"] is True and doc["skipped"] == []


def test_gpu_without_ncu_says_what_was_skipped(repo, monkeypatch):
    from kernelloop.feedback import gpu_specs, ncu

    monkeypatch.chdir(repo)
    monkeypatch.setattr(profile_cli, "_has_gpu", lambda: True)
    monkeypatch.setattr(profile_cli, "_gpu_arch", lambda: "sm_90")
    monkeypatch.setattr(profile_cli, "_spec", lambda gpu: gpu_specs.lookup("H100 SXM HBM3"))
    monkeypatch.setattr(ncu, "unavailable", lambda: "Nsight Compute (ncu) is not on PATH")
    result = runner.invoke(app, ["profile", "level1/01_relu", CUDA, "--no-eval", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["ncu"] is None and doc["ncu_failed"] is False
    assert "Nsight Compute skipped: Nsight Compute (ncu) is not on PATH" in doc["skipped"]
    assert any("--no-eval" in s for s in doc["skipped"]) and doc["summary"] is None


def test_a_candidate_ncu_could_not_profile_fails_the_command(repo, monkeypatch):
    """ncu is there but measured nothing (here: no kernel matched): the reason is in the
    document and the exit code is 1, since the candidate, not the machine, is the problem."""
    from kernelloop.feedback import gpu_specs, ncu

    monkeypatch.chdir(repo)
    monkeypatch.setattr(profile_cli, "_has_gpu", lambda: True)
    monkeypatch.setattr(profile_cli, "_gpu_arch", lambda: "sm_90")
    monkeypatch.setattr(profile_cli, "_spec", lambda gpu: gpu_specs.lookup("H100 SXM HBM3"))
    monkeypatch.setattr(ncu, "unavailable", lambda: None)

    def no_kernel(*args, **kwargs):
        raise ncu.ProfileError("ncu profiled no kernel: the candidate launched 0 kernel(s)")

    monkeypatch.setattr(ncu, "profile_candidate", no_kernel)
    result = runner.invoke(app, ["profile", "level1/01_relu", CUDA, "--no-eval", "--json"])
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    assert doc["ncu"] is None and doc["ncu_failed"] is True
    assert doc["ncu_unavailable"].startswith("ncu profiled no kernel")
    assert "Nsight Compute skipped: ncu profiled no kernel" in " ".join(doc["skipped"])
