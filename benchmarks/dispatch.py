"""What kernelloop's Python costs per eager call, over calling the chosen kernel directly.

    python benchmarks/dispatch.py [--calls N] [--samples S] [--json PATH]

Three layers put Python between a model and its kernel on every call:

(a) ``kernelloop.library.dispatch("conv2d", x, w, bias, **config)``, what the efficiency modules
    call (``modules/conv.py``), and the module op around it (``conv2d(...)``, ``Conv2d``);
(b) a ``LoadedOp`` (``kernelloop.library.load``), which a patched model calls per swapped call;
(c) a module patched by ``kernelloop.patch``, against the callable its LoadedOp chose and
    against the module's own forward.

Each is measured against the callable the layer ends up running, on the same tensors, in
adjacent pairs: one call of the layer and one of the direct callable, each timed with
``time.perf_counter``, in alternating order. A sample is the median of ``--calls`` pairs'
differences, which a burst from another process on a shared CPU moves little (whole-loop
differences did: their IQR was as large as the overhead). Reported: the median of the samples in
microseconds with their IQR, next to the per-call medians of both sides. Tensors are tiny and
torch runs on one thread, so the kernels cost microseconds and the difference is the Python.
The target is at most 5 us for (a) and (b). (c) against the original forward also differs in
the computation: the entry is the captured ATen graph, the module its own Python.

The LoadedOp and the patched module use ``examples/models/tiny_llama.py:make_block`` captured on
the CPU (its RMSNorm problem) and a library entry made for this run in a temporary folder: the
problem's own reference as ``ModelNew``, promoted untimed (the CPU path). ``TRITON_INTERPRET=1``
is set after (a) has run: LoadedOp runs an entry on a CPU only under it (entries are Triton
kernels there); this entry is plain PyTorch, so nothing is interpreted.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "examples" / "models" / "tiny_llama.py"
TARGET_US = 5.0


def _sample(layer: Callable[[], Any], direct: Callable[[], Any], calls: int):
    """Medians over ``calls`` adjacent pairs (layer, direct), in alternating order: the layer's
    per-call time, the direct callable's, and the pairs' difference, in microseconds."""
    clock = time.perf_counter
    mine, theirs, diff = [], [], []
    for i in range(calls):
        if i & 1:
            t0 = clock()
            direct()
            t1 = clock()
            layer()
            t2 = clock()
            a, b = t2 - t1, t1 - t0
        else:
            t0 = clock()
            layer()
            t1 = clock()
            direct()
            t2 = clock()
            a, b = t1 - t0, t2 - t1
        mine.append(a)
        theirs.append(b)
        diff.append(a - b)
    return (statistics.median(v) * 1e6 for v in (mine, theirs, diff))


def measure(case: str, layer: Callable[[], Any], direct: Callable[[], Any], opts, target=None):
    from kernelloop.sandbox import stats

    for _ in range(max(100, opts.calls // 10)):  # warm: decisions made, caches filled
        layer()
        direct()
    over, mine, theirs = [], [], []
    for _ in range(opts.samples):
        a, b, d = _sample(layer, direct, opts.calls)
        over.append(d)
        mine.append(a)
        theirs.append(b)
    s = stats.summarize(over, unit="us")
    row = {
        "case": case,
        "overhead_us": s.to_dict(),
        "layer_us": stats.summarize(mine, unit="us").median,
        "direct_us": stats.summarize(theirs, unit="us").median,
        "target_us": target,
        "met": None if target is None else s.median <= target,
    }
    verdict = "" if target is None else (" ok" if row["met"] else f" ABOVE {target:g} us")
    print(
        f"{case:<58} {s.median:6.2f} us (IQR {s.iqr:.2f}, n={s.n})"
        f"  [{row['layer_us']:.2f} vs {row['direct_us']:.2f} us/call]{verdict}",
        flush=True,
    )
    return row


def dispatch_rows(opts) -> list[dict]:
    from kernelloop import library
    from kernelloop.library import dispatcher
    from kernelloop.modules.conv import Conv2d, conv2d

    x, w, b = torch.randn(1, 2, 4, 4), torch.randn(2, 2, 1, 1), torch.randn(2)
    cfg = {"stride": (1, 1), "padding": (0, 0), "dilation": (1, 1), "activation": None}
    kind, fn, why = dispatcher.choose("conv2d", (x, w, b), cfg)
    print(f"(a) conv2d 1x2x4x4, 1x1 filter: dispatch chooses {kind}: {why}")
    module = Conv2d(2, 2, 1).eval()
    mw, mb = module.weight, module.bias
    with torch.no_grad():
        return [
            measure(
                "(a) library.dispatch('conv2d', ...) vs its choice",
                lambda: library.dispatch("conv2d", x, w, b, **cfg),
                lambda: fn(x, w, b),
                opts,
                TARGET_US,
            ),
            measure(
                "(a) modules.conv.conv2d(...) vs dispatch's choice",
                lambda: conv2d(x, w, b),
                lambda: fn(x, w, b),
                opts,
            ),
            measure(
                "(a) modules.conv.Conv2d(x) vs dispatch's choice",
                lambda: module(x),
                lambda: fn(x, mw, mb),
                opts,
            ),
        ]


def loaded_rows(opts, work: Path) -> list[dict]:
    import kernelloop
    from kernelloop import library, settings
    from kernelloop.capture import capture

    os.environ["TRITON_INTERPRET"] = "1"  # LoadedOp's CPU gate; see the module docstring
    found = capture(f"{MODEL}:make_block", out_dir=work / "capture", device="cpu")
    sub = next(s for s in found.subgraphs if s.kind == "norm")
    problem_file = work / "capture" / sub.file
    with settings.override(library_dir=work / "library"):
        _promote_reference(problem_file)
        loaded = library.load(problem_file, allow_untimed=True)
        model = _build()
        original = copy.deepcopy(model)
        report = kernelloop.patch(model, work / "capture", allow_untimed=True)
    site = sub.sites[0].module
    print(f"(b, c) {sub.problem_id} ({loaded.op_key}); patch: {report.swapped} swapped")
    module, before = model.get_submodule(site), original.get_submodule(site)
    x = torch.randn(2, 16, 64)
    tensors = [x, module.weight]
    with torch.no_grad():
        choice = loaded.choose(*tensors)
        print(f"(b) LoadedOp chooses {choice.kind}: {choice.why}")
        fn = choice.fn
        return [
            measure(
                "(b) LoadedOp(*tensors) vs its choice",
                lambda: loaded(*tensors),
                lambda: fn(*tensors),
                opts,
                TARGET_US,
            ),
            measure(
                "(b) LoadedOp.forward(*tensors) vs its choice",
                lambda: loaded.forward(*tensors),
                lambda: fn(*tensors),
                opts,
            ),
            measure(
                f"(c) patched {site}(x) vs the LoadedOp's choice",
                lambda: module(x),
                lambda: fn(*tensors),
                opts,
            ),
            measure(
                f"(c) patched {site}(x) vs its original forward",
                lambda: module(x),
                lambda: before(x),
                opts,
            ),
        ]


def _build():
    from kernelloop.capture import record, target

    spec = f"{MODEL}:make_block"
    model, _, _ = record.build(
        target.load_factory(spec), lambda: target.load_inputs(None, spec), "cpu", "float32"
    )
    return model


def _promote_reference(problem_file: Path) -> None:
    from kernelloop.kernelbench.problem import load_file
    from kernelloop.library.promote import promote
    from kernelloop.sandbox.verdict import Verdict

    problem = load_file(problem_file)
    source = problem.source.replace("class Model(nn.Module):", "class ModelNew(nn.Module):")
    verdict = Verdict(
        accepted=True,
        reasons=[],
        problem_id=problem.id,
        size="gpu",
        backend="triton",
        device="cpu",
        sandbox="process",
    )
    promote(verdict, source, problem, provenance={}, allow_untimed=True)


def _machine() -> dict:
    return {
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=1000, help="call pairs per sample")
    ap.add_argument("--samples", type=int, default=31)
    ap.add_argument("--json", type=Path, default=None)
    opts = ap.parse_args(argv)
    torch.set_num_threads(1)  # tiny tensors: threads add noise, not speed
    os.environ.pop("TRITON_INTERPRET", None)  # (a) measures dispatch to PyTorch, not the seed
    report = {
        "machine": _machine(),
        "date": time.strftime("%Y-%m-%d"),
        "calls": opts.calls,
        "samples": opts.samples,
        "target_us": TARGET_US,
        "rows": dispatch_rows(opts),
    }
    with tempfile.TemporaryDirectory(prefix="kernelloop-dispatch-") as tmp:
        report["rows"] += loaded_rows(opts, Path(tmp))
    if opts.json:
        opts.json.parent.mkdir(parents=True, exist_ok=True)
        opts.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
