"""The model path as the README runs it: capture, optimize, library list, apply (CPU).

Four CLI commands in one process, on the example transformer block, with the builtin coder and
the untimed tier (verified under the Triton interpreter, never timed, labelled so). The parts
have their own tests (test_capture.py, tests/library/test_any_problem.py, test_patch.py); this
one proves they meet: problem files the campaign verifies, entries the patch finds, a patched
model whose outputs match.
"""

from __future__ import annotations

import json

from paths import REPO
from typer.testing import CliRunner

from kernelloop import settings
from kernelloop.cli import app

MODEL = f"{REPO / 'examples' / 'models' / 'tiny_llama.py'}:make_block"


def test_capture_optimize_list_apply(tmp_path, monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    captured, runs = tmp_path / "captured", tmp_path / "runs"
    cli = CliRunner()
    with settings.override(library_dir=tmp_path / "library"):
        done = cli.invoke(app, ["capture", MODEL, "-o", str(captured)])
        assert done.exit_code == 0, done.output
        capture = json.loads((captured / "capture.json").read_text())
        problems = [s["problem_id"] for s in capture["subgraphs"]]
        assert {s["kind"] for s in capture["subgraphs"]} == {"attention", "matmul", "norm"}

        done = cli.invoke(
            app,
            ["optimize", str(captured), "--coder", "builtin", "--allow-untimed"]
            + ["--rounds", "1", "--run-dir", str(runs)],
        )
        assert done.exit_code == 0, done.output

        done = cli.invoke(app, ["library", "list", "--json"])
        assert done.exit_code == 0, done.output
        entries = json.loads(done.output)
        assert entries and all(e["tier"] == "untimed" for e in entries)
        assert all(e["op"].startswith("graph.") for e in entries)
        promoted_from = {e["provenance"]["problem_id"] for e in entries}
        assert promoted_from <= set(problems) and len(promoted_from) >= 2

        done = cli.invoke(
            app, ["apply", MODEL, "--capture", str(captured), "--allow-untimed", "--json"]
        )
        assert done.exit_code == 0, done.output
        report = json.loads(done.output[done.output.index("{") :])
        assert report["patch"]["swapped"] >= 2, report["patch"]
        assert report["checks"] and all(c["passed"] for c in report["checks"]), report["checks"]

        # Without --allow-untimed nothing qualifies, and the model is left as it was.
        done = cli.invoke(app, ["apply", MODEL, "--capture", str(captured), "--json"])
        assert done.exit_code == 0, done.output
        report = json.loads(done.output[done.output.index("{") :])
        assert report["patch"]["swapped"] == 0
        assert all(s["status"].startswith("left") for s in report["patch"]["sites"])
