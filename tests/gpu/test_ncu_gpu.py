"""Nsight Compute for real: bundled candidates profiled in the sandbox, on a CUDA GPU with `ncu`.

Skipped without CUDA (tests/gpu/conftest.py) or without Nsight Compute. Where the driver restricts
counters to admins, the tests retry as root with `--admin-counters` (the candidates are bundled,
trusted code) and otherwise skip with NVIDIA's fix in the reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from paths import REPO

from kernelloop import settings
from kernelloop.feedback import ncu
from kernelloop.kernelbench import loader

pytestmark = pytest.mark.skipif(ncu.ncu_path() is None, reason="needs Nsight Compute (ncu)")
SMALL = {"batch_size": 2048}  # 2048 x 32768 fp32: 256 MiB each way, well past the 50 MiB L2


@pytest.fixture(autouse=True)
def _short_timing():
    with settings.override(timing_budget_ms=100, warmup_ms=20, compile_baseline=False):
        yield


def _profile(problem, source: str, **kwargs) -> ncu.NcuReport:
    try:
        report = ncu.profile_candidate(problem, source, timeout_s=300, **kwargs)
    except ncu.NcuPermissionError as exc:
        if os.geteuid() != 0:
            pytest.skip(str(exc))
        report = ncu.profile_candidate(
            problem, source, timeout_s=300, sandbox="process", admin_counters=True, **kwargs
        )
    assert isinstance(report, ncu.NcuReport), report
    return report


def test_triton_relu_reports_dram_throughput_and_duration():
    problem = loader.load_one("level1/01_relu")
    report = _profile(problem, loader.solution_path(problem).read_text(), sets=SMALL)
    assert report.kernel_names() == ["_relu_kernel"]  # the name filter kept torch's kernels out
    assert len(report.kernels) == 1  # one profiled call; warm-up calls were not profiled
    agg = report.aggregate()
    dram, unit = agg["dram__throughput.avg.pct_of_peak_sustained_elapsed"]
    assert unit == "%" and isinstance(dram, float) and 30 < dram <= 100
    duration, unit = agg["gpu__time_duration.sum"]
    assert isinstance(duration, float) and duration > 0 and unit.endswith("second")
    read = agg["dram__bytes_read.sum"]
    assert read[1] == "byte" and read[0] >= 0.9 * 2048 * 32768 * 4
    assert report.tool and report.tool.startswith("ncu ") and report.device
    missing = set(report.missing)
    assert not missing & {"gpu__time_duration.sum", "dram__bytes_read.sum"}, report.missing


def test_cuda_relu_is_profiled_by_its_global_name():
    problem = loader.load_one("level1/01_relu")
    source = (REPO / "examples" / "relu_cuda.py").read_text()
    report = _profile(problem, source, sets=SMALL, metrics="memory")
    assert report.kernel_names() == ["relu_f32"]
    agg = report.aggregate()
    assert isinstance(agg["gpu__time_duration.sum"][0], float)
    for metric in ncu.EXTRA_SETS["memory"]:  # collected, or reported missing: never silent
        assert metric in agg or metric in report.missing, metric
    sectors = agg.get("l1tex__t_sectors_pipe_lsu_mem_global_op_ld.sum")
    if sectors is not None:  # float4 loads: at least the 256 MiB input, in 32-byte sectors
        assert sectors[0] >= 0.9 * 2048 * 32768 * 4 / 32


def test_cli_profile_json_on_gpu(tmp_path):
    raw = tmp_path / "ncu.csv"
    args = [
        "profile",
        "level1/01_relu",
        "kernelbench/problems/level1/solutions/01_relu.py",
        "--set",
        "batch_size=2048",
        "--json",
        "--raw-out",
        str(raw),
    ]
    env = {**os.environ, "KERNELLOOP_TIMING_BUDGET_MS": "100", "KERNELLOOP_COMPILE_BASELINE": "0"}
    run = lambda extra=(): subprocess.run(  # noqa: E731
        [sys.executable, "-m", "kernelloop.cli", *args, *extra],
        capture_output=True, text=True, cwd=REPO, timeout=600, env=env,
    )  # fmt: skip
    proc = run()
    if proc.returncode == 2 and "ERR_NVGPUCTRPERM" in proc.stderr:
        if os.geteuid() != 0:
            pytest.skip(proc.stderr)
        proc = run(("--sandbox", "process", "--admin-counters"))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["gpu"] is True and doc["verdict"]["accepted"] is True, doc["verdict"]
    assert doc["ncu"]["kernels"] and doc["summary"] and "ncu:" in doc["summary"]
    assert '"ID"' in raw.read_text()  # the raw CSV, ready to commit as a fixture
