"""CUDA candidates on a machine without a GPU: compiled for real, honestly not run."""

from __future__ import annotations

import pytest
import torch
from paths import REPO

from kernelloop.kernelbench import loader
from kernelloop.sandbox import reasons
from kernelloop.sandbox.evaluate import evaluate

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="CPU-only behaviour")


def test_cuda_candidate_compiles_but_is_not_run_without_gpu():
    source = (REPO / "examples" / "relu_cuda.py").read_text()
    v = evaluate(loader.load_one("level1/01_relu"), source)
    assert v.backend == "cuda"
    assert v.build is not None and v.build.ok, v.build
    assert not v.accepted and reasons.NOT_RUN_NO_GPU in v.codes
    assert v.timing is None


def test_cuda_compile_error_reports_line_numbers():
    source = (REPO / "examples" / "relu_cuda.py").read_text()
    broken = source.replace("fmaxf(x[t], 0.f);", "fmaxf(x[t], 0.f)  // missing semicolon")
    v = evaluate(loader.load_one("level1/01_relu"), broken)
    assert not v.accepted and reasons.BUILD_FAILED in v.codes
    assert v.build is not None and not v.build.ok
    # NVRTC reports the line after the statement missing its ";" (line 17 of the CUDA string)
    assert "relu_f32.cu(17): error" in v.build.log, v.build.log
