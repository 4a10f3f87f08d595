"""Campaigns whose verdicts carry a GPU timing, on CPU: what a timed campaign does after the
evaluator. The evaluator is the real one, with a GPU timing added to its verdicts as a GPU run
would have measured it on a (fake) GPU.

A finished campaign promotes its winner, and the next ``dispatch`` of the op runs it. The whole
chain: the builtin coder writes a conv2d kernel for the bundled module problem, the real
evaluator accepts it (Triton interpreter), the campaign finishes the problem and offers the
winner to the library, and ``kernelloop.modules.conv2d`` then runs that entry (the dispatch log
says so). A CPU verdict has no timing, and the library promotes only GPU-timed kernels whose
speedup's lower bound beats PyTorch; the fake GPU's fingerprint is pinned.

Nsight Compute runs on the best kernel of every round but the last: its counters serve only the
next round's Judge.
"""

from __future__ import annotations

import os

import torch

if not torch.cuda.is_available():  # must precede the first import of triton
    os.environ["TRITON_INTERPRET"] = "1"

import pytest  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from kernelloop import settings  # noqa: E402
from kernelloop.library import dispatcher, explain, fingerprint  # noqa: E402
from kernelloop.library.store import Library  # noqa: E402
from kernelloop.sandbox.stats import bootstrap_ratio, summarize  # noqa: E402
from kernelloop.sandbox.verdict import TimingResult  # noqa: E402

PROBLEM = "modules/04_conv2d_bias_relu_nhwc"
FAKE_GPU = "Fake GPU 80GB"


def _samples(center: float) -> list[float]:
    return [center * (1 + 0.01 * (i - 10) / 10) for i in range(21)]


def _timed(verdict):
    """The verdict as a GPU run would have timed it: 1.0 ms against 2.0 eager, 1.6 compiled."""
    if verdict.accepted:
        cand, eager, comp = _samples(1.0), _samples(2.0), _samples(1.6)
        verdict.timing = TimingResult(
            gpu=FAKE_GPU, candidate=summarize(cand), eager=summarize(eager),
            compiled=summarize(comp), speedup_eager=bootstrap_ratio(eager, cand, n_boot=200),
            speedup_compile=bootstrap_ratio(comp, cand, n_boot=200),
            order=["candidate", "eager", "compiled"],
        )  # fmt: skip
        verdict.timing_note = None
    return verdict


def _timed_evaluate(problem, source, **kwargs):
    """The real evaluator, its verdict timed as above."""
    from kernelloop.sandbox.evaluate import evaluate

    return _timed(evaluate(problem, source, **kwargs))


def test_campaign_winner_is_promoted_then_dispatched(tmp_path, monkeypatch, capsys):
    pytest.importorskip("langgraph")
    from builtin_support import builtin_campaign

    from kernelloop.kernelbench import loader
    from kernelloop.modules import conv2d

    env = {**fingerprint.environment(), "gpu": FAKE_GPU}
    monkeypatch.setattr(fingerprint, "arch", lambda: "cpu")  # what dispatch sees for CPU tensors
    monkeypatch.setattr(fingerprint, "environment", lambda: dict(env))
    dispatcher.clear_cache()
    with settings.override(library_dir=tmp_path / "userlib", dispatch_log=True):
        store = builtin_campaign(loader.load(PROBLEM), tmp_path / "runs", rounds=1,
                                 evaluate=_timed_evaluate)  # fmt: skip
        kinds = [e.kind for e in store.events(PROBLEM)]
        assert "promoted" in kinds, [e for e in store.events(PROBLEM) if "promot" in e.kind]
        (entry,) = Library.default().entries("conv2d")
        assert entry.provenance.run_id == store.run_id and entry.arch == "cpu"

        # The problem's CPU shapes (the entry's bucket), called as model code calls the op.
        g = torch.Generator().manual_seed(0)
        x = torch.randn(1, 8, 12, 12, generator=g).half()
        x = x.contiguous(memory_format=torch.channels_last)
        w = (torch.randn(16, 8, 3, 3, generator=g) / 8).half()
        b = torch.randn(16, generator=g).half()
        cfg = {"stride": (1, 1), "padding": (1, 1), "dilation": (1, 1), "activation": "relu"}
        assert entry.entry_id in explain("conv2d", x, w, b, **cfg)
        capsys.readouterr()
        y = conv2d(x, w, b, padding=1, activation="relu")
        expected = F.relu(F.conv2d(x.float(), w.float(), b.float(), padding=1))
        torch.testing.assert_close(y.float(), expected, atol=1e-2, rtol=1e-2)
        assert entry.entry_id in capsys.readouterr().err  # the dispatch log names what ran
    dispatcher.clear_cache()


def test_nsight_compute_runs_for_every_round_but_the_last(tmp_path, monkeypatch):
    pytest.importorskip("langgraph")
    from builtin_support import builtin_campaign

    from kernelloop.agents import graph
    from kernelloop.feedback import ncu
    from kernelloop.kernelbench import loader

    calls: list[str] = []

    def no_ncu(problem, *args, **kwargs):
        calls.append(problem.id)
        raise ncu.ProfileError("no ncu")

    monkeypatch.setattr(ncu, "profile_candidate", no_ncu)
    store = builtin_campaign(loader.load("level1/01_relu"), tmp_path, rounds=2,
                             evaluate=_timed_evaluate)  # fmt: skip
    notes = [e.payload["note"] for e in store.events() if e.kind == "profile_note"]
    assert calls == ["level1/01_relu"]  # round 0 only
    assert notes == ["no ncu", graph.NCU_LAST_ROUND]
