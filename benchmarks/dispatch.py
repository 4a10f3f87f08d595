"""What kernelloop's Python costs per eager call, over calling the chosen kernel directly.

    python benchmarks/dispatch.py [--calls N] [--samples S] [--json PATH]

Three layers put Python between a model and its kernel on every call:

(a) ``kernelloop.library.dispatch("conv2d", x, w, bias, **config)``, the dispatcher's keyed
    path, and the efficiency modules' ops, which key each call once for their argument checks
    and the dispatch decision together: ``conv2d(...)`` and ``Conv2d``, ``attention(q, k, v)``
    and the ``Attention`` layer, ``qlinear(...)`` and ``QuantLinear`` (2-D and 3-D input);
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
The target is at most 5 us for (a) and (b). Where a side cannot call the choice on the layer's
input as is, it does the data work the op must do first, and says so: the ``Attention`` layer's
projections, head reshapes and contiguous copies, a 3-D ``QuantLinear`` input's flattening.
``nn.Module.__call__`` (about 1 us here) counts against the modules. (c) against the original
forward also differs in the computation: the entry is the captured ATen graph, the module its
own Python.

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
        f"{case:<64} {s.median:6.2f} us (IQR {s.iqr:.2f}, n={s.n})"
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
                TARGET_US,
            ),
            measure(
                "(a) modules.conv.Conv2d(x) vs dispatch's choice",
                lambda: module(x),
                lambda: fn(x, mw, mb),
                opts,
                TARGET_US,
            ),
        ]


def attention_rows(opts) -> list[dict]:
    from kernelloop.library import dispatcher
    from kernelloop.modules.attention import Attention, attention, default_scale

    q, k, v = (torch.randn(1, 2, 8, 16) for _ in range(3))
    cfg = {"causal": False, "scale": default_scale(16)}
    kind, fn, why = dispatcher.choose("attention", (q, k, v), cfg)
    print(f"(a) attention 1x2x8x16: dispatch chooses {kind}: {why}")
    layer, x = Attention(32, 2).eval(), torch.randn(1, 8, 32)
    direct_layer = _attention_layer_direct(layer, fn)
    with torch.no_grad():
        return [
            measure(
                "(a) modules.attention.attention(q, k, v) vs dispatch's choice",
                lambda: attention(q, k, v),
                lambda: fn(q, k, v),
                opts,
                TARGET_US,
            ),
            measure(
                "(a) modules.attention.Attention(x) vs its forward on the choice",
                lambda: layer(x),
                lambda: direct_layer(x),
                opts,
                TARGET_US,
            ),
        ]


def _attention_layer_direct(layer, fn):
    """``Attention.forward`` line by line with ``attention(q, k, v, causal=...)`` replaced by the
    dispatcher's choice on the contiguous heads: the op copies the projections' transposed
    heads because library entries were verified on contiguous inputs only, which is work on
    the data (the same on both sides), not dispatch. The layer's own projections and reshapes
    run on both sides; the op and ``nn.Module.__call__`` are the difference."""

    def forward(x):
        q = layer._heads(layer.q_proj(x), layer.num_heads).contiguous()
        k = layer._heads(layer.k_proj(x), layer.num_kv_heads).contiguous()
        v = layer._heads(layer.v_proj(x), layer.num_kv_heads).contiguous()
        out = fn(q, k, v)
        batch, seq = x.shape[:2]
        return layer.o_proj(out.transpose(1, 2).reshape(batch, seq, layer.embed_dim))

    return forward


def qgemm_rows(opts) -> list[dict]:
    from kernelloop.library import dispatcher
    from kernelloop.modules.qgemm import QuantLinear, op_tensors, qlinear

    module = QuantLinear.from_linear(torch.nn.Linear(64, 32), bits=4, group_size=32).eval()
    qw, bias = module.qweight, module.bias
    x = torch.randn(4, 64)
    tensors = op_tensors(x, qw, bias)
    x3 = torch.randn(2, 2, 64)  # (batch, seq, features): the op flattens it for the kernel
    rest = tensors[1:]  # the weight tensors and bias
    cfg = {"group_size": 32, "symmetric": True}
    kind, fn, why = dispatcher.choose("qgemm.w4a16", tensors, cfg)
    print(f"(a) qgemm.w4a16 4x64 @ 64x32: dispatch chooses {kind}: {why}")
    with torch.no_grad():
        return [
            measure(
                "(a) modules.qgemm.qlinear(x, qw, bias) vs dispatch's choice",
                lambda: qlinear(x, qw, bias),
                lambda: fn(*tensors),
                opts,
                TARGET_US,
            ),
            measure(
                "(a) modules.qgemm.QuantLinear(x) vs dispatch's choice",
                lambda: module(x),
                lambda: fn(*tensors),
                opts,
                TARGET_US,
            ),
            measure(
                "(a) QuantLinear(x 2x2x64) vs the choice on x flattened",
                lambda: module(x3),
                # the kernel convention is 2-D: flattening and unflattening are the call's
                lambda: torch.reshape(fn(torch.reshape(x3, (-1, 64)), *rest), (2, 2, 32)),
                opts,
                TARGET_US,
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
        "rows": dispatch_rows(opts) + attention_rows(opts) + qgemm_rows(opts),
    }
    with tempfile.TemporaryDirectory(prefix="kernelloop-dispatch-") as tmp:
        report["rows"] += loaded_rows(opts, Path(tmp))
    if opts.json:
        opts.json.parent.mkdir(parents=True, exist_ok=True)
        opts.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
