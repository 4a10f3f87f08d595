"""``kernelloop capture``: turn a user's PyTorch model into ranked problems for the loop.

From ``FILE:FACTORY`` (a function returning the ``nn.Module``) and its inputs, :func:`capture`

1. builds the model in eval mode where asked (``meta`` costs nothing; ``record.build``);
2. runs one forward, recording every module call and the ATen ops inside it (``record.py``);
3. chooses the units, one module call each, identical calls sharing one, and times them at the
   roofline of the target GPU (``units.py``: the rule is in its docstring);
4. traces each unit as a pure function of its arguments and state with ``torch.export``
   (``functional.py``) and writes it as a KernelBench-format problem (``emit.py``), with the
   input distributions under which its reference is well-conditioned (``conditioning.py``);
5. writes the ``top`` largest as ``<rank>_<kind>_<module>.py`` with ``capture.json``
   (``manifest.py``) into the output folder, all at once: the files go to a temporary folder
   that replaces the output folder when complete, so a crash leaves no half capture.

Continue with ``kernelloop optimize DIR --coder builtin`` (or LLM agents); ``kernelloop apply``
patches the model with the verified kernels, reading ``capture.json``.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from .errors import CaptureError, TargetError
from .manifest import FILE_NAME, Capture, Site, Subgraph

__all__ = ["capture", "Capture", "CaptureError", "TargetError"]

DEFAULT_GPU = "NVIDIA H100 80GB HBM3"  # the roofline the problems' hygiene check uses too


def capture(
    model_spec: str,
    *,
    inputs: str | None = None,
    out_dir: Path | str,
    top: int = 8,
    device: str = "cpu",
    dtype: str | None = None,
    gpu: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> Capture:
    """Capture ``model_spec`` into ``out_dir`` (see the module docstring) and return what was
    written. Raises :class:`TargetError` for bad arguments, :class:`CaptureError` for a model
    that does not run or cannot be traced."""
    from . import conditioning, record, target, units

    say = progress or (lambda _msg: None)
    if top < 1:
        raise TargetError(f"--top {top}: keep at least one problem")
    spec = _gpu(gpu, device)
    factory = target.load_factory(model_spec)
    say(f"building the model on {device}")
    model, args, dtype_name = record.build(
        factory, lambda: target.load_inputs(inputs, model_spec), device, dtype
    )
    say("recording one forward")
    rec = record.record(model, args, dtype_name)
    tracer = _Tracer(rec, say)
    plan = units.plan(rec, spec, tracer.check, top)
    measured = _measured(model, args, plan, say) if device == "cuda" else {}
    say(f"writing {len(plan.units)} problems")
    subgraphs, files = [], {}
    for rank, unit in enumerate(plan.units, start=1):
        sub, source = tracer.problem(unit, rank, plan.share(unit), model_spec)
        sub = dataclasses.replace(sub, measured_ms=measured.get(unit.calls[0].id))
        subgraphs.append(sub)
        # Only the input distributions under which the reference's own rounding leaves room
        # for a kernel's (a conv-BN chain's zeroed running variances amplify it past the
        # tolerance): the rest would fail correct kernels.
        files[sub.file] = conditioning.settle(source)
    result = Capture(
        model=model_spec,
        inputs=inputs,
        device=device,
        dtype=dtype_name,
        gpu=spec.name,
        total_estimated_ms=plan.total_ms,
        subgraphs=tuple(subgraphs),
        uncovered=tuple(plan.uncovered),
        created_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    )
    _write(Path(out_dir), files, result)
    return result


class _Tracer:
    """The units' ``check``: can this call stand alone, and trace and write as a problem?
    Keeps each key's trace so that writing the chosen units traces nothing twice."""

    def __init__(self, rec, say) -> None:
        self.rec, self.say = rec, say
        self.traced: dict[tuple, object] = {}
        self.why: dict[tuple, str] = {}

    def check(self, call, key: tuple) -> str | None:
        from . import emit, functional

        if key in self.why:
            return self.why[key]
        why = functional.why_not_standalone(call, self.rec.device)
        if why is None:
            module = self.rec.modules[call.module]
            self.say(f"tracing {call.module or 'the model'} ({call.module_type})")
            error = None
            for mode in functional.MODES:
                try:
                    program = functional.export_call(module, call, mode)
                except Exception as exc:  # try the next, less dynamic mode
                    error = exc  # the static trace's error is the one to report
                    continue
                why = functional.mutation_why(program)
                if why:
                    break
                try:  # written once here to know it can be; again with its rank later
                    header = emit.Header("unit", [call], "", self.rec.dtype)
                    written = emit.write(program, module, call, header)
                    emit.check(written.source, call.outputs, self.rec.dtype)
                except emit.Unspellable as exc:
                    why = str(exc)
                    continue
                self.traced[key], why = program, None
                break
            else:
                if error is not None and why is None:
                    raise functional.untraceable(call, error, self.rec.modules) from error
        if why is not None:
            self.why[key] = why
        return why

    def problem(self, unit, rank: int, share: float, model_spec: str) -> tuple[Subgraph, str]:
        from . import emit

        call = unit.calls[0]
        module = self.rec.modules[call.module]
        header = emit.Header(unit.kind, unit.calls, model_spec, self.rec.dtype)
        written = emit.write(self.traced[unit.key], module, call, header)
        stem = f"{rank:02d}_{unit.kind}_{_slug(call.module)}"
        sub = Subgraph(
            problem_id=stem,
            file=f"{stem}.py",
            kind=unit.kind,
            ops=written.ops,
            inputs=written.inputs,
            outputs=call.outputs or (),
            returns_tuple=call.returns_tuple,
            # As JSON reads them back (a tuple is a list), so a loaded capture equals this one.
            constants={
                str(i): json.loads(json.dumps(a.value))
                for i, a in enumerate(call.args)
                if a.tensor is None
            },
            sites=tuple(Site(c.module, c.module_type, c.call) for c in unit.calls),
            flops=unit.flops,
            bytes=unit.bytes,
            estimated_ms=unit.estimated_ms,
            share=share,
            keyword_constants={
                k: json.loads(json.dumps(a.value))
                for k, a in call.kwargs.items()
                if a.tensor is None
            },
            keyword_tensors=tuple(k for k, a in call.kwargs.items() if a.tensor),
            none_outputs=call.none_outputs,
            unread_args=_unread(call, written.inputs),
        )
        return sub, written.source


def _measured(model, args, plan, say) -> dict[int, float]:
    """Each chosen unit's measured time by its first call's id; the units re-ranked by it
    (all their sites together), as the roofline ranked them where nothing runs."""
    from . import measure

    say(f"timing {len(plan.units)} units on the GPU")
    found = measure.time_units(model, args, [u.calls[0] for u in plan.units])
    plan.units.sort(key=lambda u: -found.get(u.calls[0].id, 0.0) * len(u.calls))
    return found


def _unread(call, inputs) -> tuple[int, ...]:
    """Positional tensor arguments the traced graph never reads (export drops them as inputs)."""
    read = {i.index for i in inputs if i.kind == "arg" and i.index is not None}
    return tuple(i for i, a in enumerate(call.args) if a.tensor and i not in read)


def _slug(module: str) -> str:
    return re.sub(r"[^0-9a-zA-Z]+", "_", module).strip("_").lower()[:48] or "model"


def _gpu(name: str | None, device: str):
    from ..feedback import gpu_specs

    if name:
        found = gpu_specs.lookup(name) or gpu_specs.lookup(f"{name} SXM")
        if found is None:
            raise TargetError(
                f"--gpu {name!r}: no datasheet entry; name one such as 'H100 SXM', 'H200', "
                "'A100 80GB SXM', 'L40S', 'L4', 'RTX 4090'"
            )
        return found
    if device == "cuda":
        return gpu_specs.current()
    return gpu_specs.lookup(DEFAULT_GPU)


def _write(out_dir: Path, files: dict[str, str], result: Capture) -> None:
    """Everything into a temporary sibling folder, which then takes ``out_dir``'s place."""
    out_dir = out_dir.resolve()  # "-o ." has a name and a parent to rename within
    if out_dir.exists():
        if not out_dir.is_dir():
            raise TargetError(f"-o {out_dir}: a file, not a folder")
        if any(out_dir.iterdir()) and not (out_dir / FILE_NAME).is_file():
            raise TargetError(
                f"-o {out_dir}: the folder holds files and no {FILE_NAME}; "
                "capture into an empty or new folder (an earlier capture's folder is replaced)"
            )
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    old = None
    try:
        for name, source in files.items():
            (tmp / name).write_text(source, encoding="utf-8")
        result.write(tmp)
        if out_dir.exists():
            old = out_dir.with_name(f"{tmp.name}.old")
            out_dir.rename(old)
        tmp.rename(out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and old.exists():
            shutil.rmtree(old, ignore_errors=True)
