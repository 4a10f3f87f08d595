"""The `kernelloop` command as a user runs it: exit codes, --json output, helpful errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from kernelloop.cli import app

runner = CliRunner()
SOLUTION = "kernelbench/problems/level1/solutions/01_relu.py"


def _kl(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kernelloop.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def test_eval_json_prints_exactly_one_verdict_and_exits_zero(repo):
    proc = _kl("eval", "level1/01_relu", SOLUTION, "--json", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    verdict = json.loads(proc.stdout)  # the whole of stdout is one JSON object
    assert verdict["accepted"] is True and verdict["schema_version"] == 1
    assert verdict["timing"] is None or verdict["timing"]["candidate"]["n"] > 0
    assert set(verdict["phases"]) >= {"static", "reference", "candidate", "compare"}


def test_eval_rejection_exits_one(repo):
    proc = _kl("eval", "level1/01_relu", "examples/cheat_calls_torch.py", cwd=repo)
    assert proc.returncode == 1
    assert "REJECTED" in proc.stdout and "TORCH_COMPUTE" in proc.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["eval", "level1/01_relu", "missing.py"], "no such candidate file"),
        (["eval", "nope", SOLUTION], "no single problem"),
        (["eval", "level1/01_relu", SOLUTION, "--backend", "opencl"], "unknown backend"),
        (["eval", "level1/01_relu", SOLUTION, "--set", "batch_size"], "NAME=VALUE"),
        (["eval", "level1/01_relu", SOLUTION, "--set", "nope=1"], "no module constant"),
        (["eval", "level1/01_relu", SOLUTION, "--size", "huge"], "no size"),
    ],
    ids=[
        "missing-candidate",
        "unknown-problem",
        "bad-backend",
        "bad-set",
        "unknown-constant",
        "unknown-size",
    ],
)
def test_usage_errors_exit_two_with_a_message(args, message, repo, monkeypatch):
    monkeypatch.chdir(repo)
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output


def test_problems_list_json_and_show(repo, monkeypatch):
    monkeypatch.chdir(repo)
    result = runner.invoke(app, ["problems", "list", "level1", "--json"])
    assert result.exit_code == 0
    listed = json.loads(result.stdout)
    assert listed[0]["id"] == "level1/01_relu" and "cpu" in listed[0]["sizes"]
    shown = runner.invoke(app, ["problems", "show", "level1/05_softmax"])
    assert shown.exit_code == 0 and "class Model" in shown.output


def test_problems_check_one_problem(repo, monkeypatch):
    monkeypatch.chdir(repo)
    result = runner.invoke(app, ["problems", "check", "level1/13_cumsum", "--json"])
    assert result.exit_code == 0
    (report,) = json.loads(result.stdout)
    assert report["passed"] and report["size"] == "cpu"


def test_doctor_reports_every_component():
    result = runner.invoke(app, ["doctor", "--json"])
    assert result.exit_code == 0
    names = {c["name"] for c in json.loads(result.stdout)}
    assert names == {
        "GPU", "driver", "nvcc", "NVRTC", "Triton", "bwrap", "docker", "ray", "ncu", "NVML"
    }  # fmt: skip


def test_campaign_summary_table_shows_the_stored_speedups():
    from rich.console import Console

    from kernelloop.campaign_cli import summary_table

    best = {"speedup_eager": {"point": 0.99, "low": 0.98, "high": 1.0}, "speedup_compile": None}
    summary = {"problems": [{"problem_id": "level1/01_relu", "status": "solved", "best": best}]}
    console = Console(width=100, record=True)
    console.print(summary_table(summary))
    text = console.export_text()
    assert "0.99x" in text and "level1/01_relu" in text
