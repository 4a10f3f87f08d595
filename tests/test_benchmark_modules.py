"""benchmarks/modules.py's plumbing on CPU (its numbers need a GPU: scripts/gpu_check.sh)."""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest
from paths import REPO

SCRIPT = REPO / "benchmarks" / "modules.py"


@pytest.fixture()
def bench(monkeypatch):
    spec = importlib.util.spec_from_file_location("bench_modules", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_without_a_gpu_it_says_so_and_succeeds(bench, capsys, monkeypatch):
    monkeypatch.setattr(bench.torch.cuda, "is_available", lambda: False)
    assert bench.main(["qgemm", "--quick"]) == 0
    assert "needs a CUDA GPU" in capsys.readouterr().out


def test_a_run_cut_short_keeps_every_row_it_measured(bench, monkeypatch, tmp_path, capsys):
    """Rows are printed and saved as they are measured: a device lease that ends mid-module
    still brings back the first ones (the qgemm module once returned nothing this way)."""
    seen = {}

    def fake(opts):
        seen["quick"] = opts.quick
        yield bench.Row("qgemm", "M1 N4096 K4096 fp16", "cublas-fp16", 0.05, 0.001, 100)
        raise KeyboardInterrupt  # the lease ends here

    monkeypatch.setattr(bench.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(bench, "_environment", lambda: {"gpu": "test"})
    monkeypatch.setitem(bench.BENCHMARKS, "qgemm", fake)
    out = tmp_path / "modules.json"
    with pytest.raises(KeyboardInterrupt):
        bench.main(["qgemm", "--quick", "--json", str(out)])
    rows = json.loads(out.read_text())["rows"]
    assert seen["quick"] and [r["impl"] for r in rows] == ["cublas-fp16"]
    assert "cublas-fp16" in capsys.readouterr().out


def test_unknown_module_is_refused(bench):
    with pytest.raises(SystemExit):
        bench.main(["nonesuch"])
