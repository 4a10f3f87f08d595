"""``kernelloop apply``: patch a captured model with its library kernels, check it, time it.

The last step of capture -> optimize -> library -> apply. It builds the model the way
``kernelloop capture`` did (``capture/target.py``, ``capture/record.build``: eval mode, the
capture's dtype), runs it, patches it (``kernelloop.patch``), and compares the patched outputs
with the original's on the example inputs and on one set of seeded random inputs of the same
shapes, with the evaluator's comparison (``sandbox/compare.py``) and tolerances (the dtype's
default, loosened where a swapped problem declares a looser ``TOLERANCE``). On a CUDA GPU it
also times both with the one benchmarking routine (``sandbox/timing.py``).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from .cli_common import JsonOpt, emit, fail
from .errors import KernelloopError

console = Console()
SCHEMA_VERSION = 1
RANDOM_SEED = 0  # the second input set: same shapes, values drawn from this seed


class ApplyError(KernelloopError, RuntimeError):
    """The model cannot be checked: it fails to run, or its outputs cannot be compared."""


@dataclasses.dataclass(frozen=True)
class OutputCheck:
    inputs: str  # "example" or "random (seed 0)"
    passed: bool
    max_abs_err: float
    max_rel_err: float
    message: str  # the first mismatch, "" when passed
    exact_only: int = 0  # elements judged against the float64 model (sandbox/compare.py)


def apply_cmd(
    model: Annotated[
        str,
        typer.Argument(
            metavar="FILE:FACTORY",
            help="The model, as given to `kernelloop capture`: a Python file and a function in it "
            "that takes no argument and returns the nn.Module.",
        ),
    ],
    capture: Annotated[
        Path, typer.Option("--capture", help="The folder `kernelloop capture -o` wrote.")
    ],
    inputs: Annotated[
        str | None,
        typer.Option(
            metavar="FILE:FN",
            help="A function returning the forward's positional arguments (default: the "
            "capture's, else get_inputs or example_inputs in the factory's file).",
        ),
    ] = None,
    allow_untimed: Annotated[
        bool,
        typer.Option(
            "--allow-untimed",
            help="Also use entries verified but never timed (promoted from a CPU run). On a CPU "
            "this sets TRITON_INTERPRET=1 first: the entries' Triton kernels run interpreted.",
        ),
    ] = False,
    device: Annotated[
        str | None, typer.Option(help="cpu or cuda (default: cuda where there is one).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Patch a captured model with its verified library kernels; check the outputs, and time it.

    The whole path:

        kernelloop capture model.py:make -o cap      # hot module calls -> problem files
        kernelloop optimize cap --coder builtin      # verify (and on a GPU time) kernels
        kernelloop library list                      # what was promoted, per op key
        kernelloop apply model.py:make --capture cap # patch, compare, time

    Each captured module call whose problem has a library entry has its forward swapped
    (`kernelloop.patch`, the same in your code); the rest run as before. Outputs are compared on
    the example inputs and on seeded random inputs of the same shapes with the evaluator's
    tolerances. On a CUDA GPU the original and the patched model are timed; on a CPU only
    correctness is checked. Entries promoted from a CPU run are untimed and used only with
    --allow-untimed (on a CPU that sets TRITON_INTERPRET=1 before triton is imported).
    KERNELLOOP_DISPATCH_LOG=1 prints which kernel each swapped call ran, and why.

    Exit status: 0 outputs match, 1 they do not, 2 usage error.
    """
    if device not in (None, "cpu", "cuda"):
        raise fail(f"--device {device!r}: use cpu or cuda")
    import torch  # torch alone does not import triton; the capture and library modules do

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    interpreted = _interpret_if_needed(device, allow_untimed)
    try:
        result = _run(model, capture, inputs, allow_untimed, device)
    except KernelloopError as exc:
        raise fail(escape(str(exc))) from None
    result["triton_interpret"] = interpreted
    if as_json:
        emit(result)
    else:
        _print(result)
    raise typer.Exit(0 if all(c["passed"] for c in result["checks"]) else 1)


def _interpret_if_needed(device: str, allow_untimed: bool) -> bool:
    """Untimed entries are Triton kernels; a CPU runs them only under the interpreter, which
    must be switched on before triton is first imported (it decides at import)."""
    if device != "cpu" or not allow_untimed:
        return os.environ.get("TRITON_INTERPRET") == "1"
    if os.environ.get("TRITON_INTERPRET") != "1" and "triton" in sys.modules:
        raise fail(
            "triton was imported before TRITON_INTERPRET=1 could be set: run "
            "`TRITON_INTERPRET=1 kernelloop apply ...`"
        )
    os.environ["TRITON_INTERPRET"] = "1"
    return True


def _run(spec: str, capture_dir: Path, inputs: str | None, allow_untimed: bool, device: str):
    import torch

    from .capture import record, target
    from .capture.manifest import Capture
    from .model_patch import patch
    from .sandbox import exact

    found = Capture.load(capture_dir)
    folder = capture_dir if capture_dir.is_dir() else capture_dir.parent
    inputs = inputs or found.inputs
    model, args, _ = record.build(
        target.load_factory(spec), lambda: target.load_inputs(inputs, spec), device, found.dtype
    )
    sets = {"example": args, f"random (seed {RANDOM_SEED})": _random_like(args, RANDOM_SEED)}
    with torch.no_grad():  # patched calls run without autograd; the originals then do too
        expected = {name: _forward(model, a, "the original model") for name, a in sets.items()}
        wide = _exact(model, sets) if found.dtype in exact.HALF else {}
        report = patch(model, folder, allow_untimed=allow_untimed)
        got = {name: _forward(model, a, "the patched model") for name, a in sets.items()}
    tol = _tolerance(found.dtype, folder, report)
    checks = [_check(name, got[name], expected[name], tol, wide.get(name)) for name in sets]
    result: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "model": spec,
        "capture": str(folder),
        "device": _device_name(device),
        "dtype": found.dtype,
        "patch": report.to_dict(),
        "tolerance": tol,
        "checks": [dataclasses.asdict(c) for c in checks],
        "timing": None,
        "timing_note": None,
    }
    if device != "cuda":
        result["timing_note"] = "timing needs a CUDA GPU: on a CPU the outputs are checked only"
    elif not report.swapped:
        result["timing_note"] = "nothing was swapped: the patched model is the original"
    else:
        result["timing"] = _time(model, args)
    return result


def _forward(model, args: list, what: str):
    try:
        return model(*args)
    except Exception as exc:  # the user's model, not kernelloop: say which run failed
        raise ApplyError(f"{what} failed on its inputs: {type(exc).__name__}: {exc}") from exc


def _exact(model, sets: dict[str, list]) -> dict[str, Any]:
    """The original model's outputs in float64 on each input set, where it runs so: a half
    model's outputs are then compared like the evaluator compares (``sandbox/compare.py``)."""
    from .sandbox import exact

    try:
        twin = exact.widen_model(model)
        return {name: twin(*exact.widen(a)) for name, a in sets.items()}
    except Exception:  # an op without a float64 kernel, memory: the half outputs alone judge
        return {}


def _random_like(args: list, seed: int) -> list:
    """Same shapes, dtypes and devices; new normal values for floating tensors. Integer tensors
    (token ids, indices) are kept: their valid range is the model's business."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    out = []
    for a in args:
        if isinstance(a, torch.Tensor) and a.is_floating_point():
            values = torch.randn(a.shape, generator=gen, dtype=torch.float32)
            out.append(values.to(device=a.device, dtype=a.dtype))
        else:
            out.append(a.clone() if isinstance(a, torch.Tensor) else a)
    return out


def _tolerance(dtype: str, folder: Path, report) -> dict[str, float]:
    """The evaluator's default for the dtype, loosened to the loosest TOLERANCE a swapped
    problem declares: each entry was accepted at its problem's tolerance."""
    from .kernelbench.problem import DEFAULT_TOLERANCE, ProblemError, load_file

    tol = dict(DEFAULT_TOLERANCE.get(dtype, DEFAULT_TOLERANCE["float32"]))
    for problem_id in {s.problem for s in report.sites if s.swapped}:
        try:
            declared = load_file(folder / f"{problem_id}.py").tolerance
        except (ProblemError, OSError):
            continue
        tol = {k: max(tol[k], float(declared.get(k, tol[k]))) for k in tol}
    return tol


def _check(
    name: str, got: Any, expected: Any, tol: dict[str, float], wide: Any = None
) -> OutputCheck:
    import torch
    import torch.utils._pytree as pytree

    from .sandbox import exact
    from .sandbox.compare import compare

    got_leaves, got_tree = pytree.tree_flatten(got)
    exp_leaves, exp_tree = pytree.tree_flatten(expected)
    wide_leaves, wide_tree = pytree.tree_flatten(wide)
    tensors = [e for e in exp_leaves if isinstance(e, torch.Tensor)]
    twins = [w for w in wide_leaves if isinstance(w, torch.Tensor)]
    if wide is None or wide_tree != exp_tree or exact.disagreement(tensors, twins, tol):
        wide_leaves = [None] * len(exp_leaves)
    if got_tree != exp_tree:
        return OutputCheck(name, False, 0.0, 0.0, f"output structure {got_tree} != {exp_tree}")
    max_abs = max_rel = 0.0
    exact_only = 0
    for i, (g, e, w) in enumerate(zip(got_leaves, exp_leaves, wide_leaves, strict=True)):
        if not isinstance(e, torch.Tensor):
            if g != e:
                return OutputCheck(name, False, max_abs, max_rel, f"output {i}: {g!r} != {e!r}")
            continue
        if not isinstance(g, torch.Tensor):
            return OutputCheck(name, False, max_abs, max_rel, f"output {i} is not a tensor")
        twin = w.detach().cpu() if isinstance(w, torch.Tensor) else None
        cmp = compare(
            g.detach().cpu(), e.detach().cpu(), atol=tol["atol"], rtol=tol["rtol"], exact=twin
        )
        max_abs = max(max_abs, cmp.max_abs_err or 0.0)
        max_rel = max(max_rel, cmp.max_rel_err or 0.0)
        exact_only += cmp.exact_only
        if not cmp.passed:
            return OutputCheck(name, False, max_abs, max_rel, f"output {i}: {cmp.message}")
    return OutputCheck(name, True, max_abs, max_rel, "", exact_only)


def _time(model, args: list) -> dict[str, Any]:
    """Original against patched with the one benchmarking routine (fresh inputs and an L2 flush
    per call, repetitions by the settings' time budget), on the example inputs' shapes."""
    import torch

    from . import settings
    from .model_patch import unpatch
    from .sandbox import stats, timing

    cfg = settings.get()
    clock = timing.Clock.capture()
    flusher = timing.L2Flusher(torch.device("cuda"))
    gen = torch.Generator().manual_seed(RANDOM_SEED)

    def samples(fn) -> list[float]:
        with torch.no_grad():
            fn(*args)  # compilation and autotuning stay out of the warm-up estimate
            clock.synchronize()
            return timing.benchmark(
                fn,
                lambda: timing.fresh_inputs(args, gen),
                clock=clock,
                flusher=flusher,
                budget_ms=cfg.timing_budget_ms,
                warmup_ms=cfg.warmup_ms,
            )

    patched = samples(model)
    unpatch(model)  # the same model object, its own forward again
    original = samples(model)
    return {
        "original": stats.summarize(original).to_dict(),
        "patched": stats.summarize(patched).to_dict(),
        "speedup": stats.bootstrap_ratio(original, patched).to_dict(),
    }


def _device_name(device: str) -> str:
    import torch

    if device == "cuda":
        return torch.cuda.get_device_name(0)
    return "cpu"


def _print(result: dict[str, Any]) -> None:
    from .model_patch import PatchReport

    console.print(escape(str(PatchReport.from_dict(result["patch"]))))
    if result["triton_interpret"]:
        console.print("TRITON_INTERPRET=1: Triton kernels run interpreted (slow, CPU only)")
    tol = result["tolerance"]
    for c in result["checks"]:
        where = f"on the {c['inputs']} inputs"
        if c["passed"]:
            console.print(
                f"[green]outputs match[/green] {where} (max abs err {c['max_abs_err']:.3g}, "
                f"max rel err {c['max_rel_err']:.3g}; atol {tol['atol']:g}, rtol {tol['rtol']:g})"
            )
            if c.get("exact_only"):
                console.print(
                    f"  {c['exact_only']} elements differ by more than that from the original "
                    f"but lie within the tolerance or the rounding noise of the float64 model: "
                    f"the {result['dtype']} original's own rounding (sandbox/compare.py)"
                )
        else:
            console.print(f"[red]outputs DIFFER[/red] {where}: {escape(c['message'])}")
    t = result["timing"]
    if t is None:
        console.print(escape(result["timing_note"]))
        return
    o, p, s = t["original"], t["patched"], t["speedup"]
    console.print(
        f"on {result['device']}: original {o['median']:.4g} ms (IQR {o['iqr']:.3g}, n={o['n']}), "
        f"patched {p['median']:.4g} ms (IQR {p['iqr']:.3g}, n={p['n']}): "
        f"{s['point']:.2f}x [{s['low']:.2f}, {s['high']:.2f}] (95% bootstrap interval)"
    )
