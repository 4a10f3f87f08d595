"""On a CUDA device, capture times each chosen unit's first site with the one benchmarking
routine (``kernelloop/capture/measure.py``). No GPU here: a perf_counter clock and a no-op
flush stand in for CUDA events and the L2 flush, so the path runs; no figure is asserted."""

from __future__ import annotations

import torch
from paths import REPO

from kernelloop import settings
from kernelloop.capture import measure, record
from kernelloop.sandbox import timing


class _Twice(torch.nn.Module):
    """One linear called twice, with different arguments, and a keyword-argument call."""

    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(8, 8)
        self.scale = _Scale()

    def forward(self, x):
        return self.scale(self.proj(self.proj(x)), factor=torch.full((8,), 2.0))


class _Scale(torch.nn.Module):
    def forward(self, x, factor):
        return x * factor


def test_site_arguments_are_the_ones_each_call_got():
    model, x = _Twice().eval(), torch.randn(3, 8)
    rec = record.record(model, [x], "float32")
    proj = [c for c in rec.calls if c.module == "proj"]
    scale = next(c for c in rec.calls if c.module == "scale")
    found = measure.site_arguments(model, [x], [proj[1], scale])
    (arg,), kwargs = found[proj[1].id]
    with torch.no_grad():
        torch.testing.assert_close(arg, model.proj(x))  # the second call's input, not x
    assert kwargs == {} and set(found[scale.id][1]) == {"factor"}


def test_each_chosen_call_is_timed_with_the_benchmarking_routine(fake_gpu_clock, monkeypatch):
    model, x = _Twice().eval(), torch.randn(3, 8)
    rec = record.record(model, [x], "float32")
    chosen = [next(c for c in rec.calls if c.module == m) for m in ("proj", "scale")]
    runs = {"proj": 0, "scale": 0}
    for name in runs:
        model.get_submodule(name).register_forward_hook(
            lambda m, a, o, name=name: runs.__setitem__(name, runs[name] + 1)
        )
    with settings.override(timing_budget_ms=2, warmup_ms=1):
        medians = measure.time_units(model, [x], chosen)
    assert set(medians) == {c.id for c in chosen} and all(m > 0 for m in medians.values())
    # One forward for the arguments (proj twice), then at least MIN_ITERS timed calls each.
    assert runs["scale"] >= timing.MIN_ITERS and runs["proj"] >= timing.MIN_ITERS + 2


def test_a_cuda_capture_records_measured_times_and_ranks_by_them(tmp_path, monkeypatch):
    # capture() on "cuda" without a GPU: the model stays on the CPU and time_units is replaced
    # by one that says the unit the roofline ranks last costs the most.
    from kernelloop import capture as capture_pkg
    from kernelloop.capture.manifest import Capture

    real_build, real_gpu = record.build, capture_pkg._gpu
    monkeypatch.setattr(record, "build", lambda f, i, device, dtype: real_build(f, i, "cpu", dtype))
    monkeypatch.setattr(capture_pkg, "_gpu", lambda name, device: real_gpu(None, "cpu"))
    seen: list[int] = []

    def fake_time(model, args, calls):
        seen.extend(c.id for c in calls)
        return {c.id: 1.0 + i for i, c in enumerate(calls)}  # the last, slowest

    monkeypatch.setattr(measure, "time_units", fake_time)
    model = f"{REPO / 'examples' / 'models' / 'tiny_cnn.py'}:make_cnn"
    result = capture_pkg.capture(model, out_dir=tmp_path / "out", device="cuda")
    assert seen and all(s.measured_ms is not None for s in result.subgraphs)
    totals = [s.measured_ms * len(s.sites) for s in result.subgraphs]
    assert totals == sorted(totals, reverse=True)
    assert Capture.load(tmp_path / "out") == result  # measured_ms round-trips
