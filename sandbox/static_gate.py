"""Static gate: judge a candidate by reading its source, before anything of it runs.

The candidate (a Python file defining ``ModelNew``) is parsed with ``ast``; it is never imported
or executed. The gate detects the backend and reports :class:`Finding` s, each carrying a code
from :mod:`.reasons`. It is an allowlist: names resolve only to allowed modules' allowed members
(``gate_reach.py``), names the source never binds are refused (``gate_names.py``), native source
in strings is scanned as text (``gate_native.py``), and the walk over the tree (``gate_walk.py``)
applies the rule tables of ``gate_rules.py``, each naming the
row of ``shared/docs/evaluator-threats.md`` it blocks. With the process boundary it is the wall
(docs/threat-model.md); what it cannot see statically (tensor arithmetic, aliasing through data
structures) is left to the run-time checks, which are tripwires behind it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass

from .. import pyast
from . import reasons
from .gate_rules import BACKENDS, MARKER_TEXT
from .gate_source import SourceModel
from .gate_walk import Finding, Gate

__all__ = ["Finding", "GateResult", "check_source", "detect_backend"]

# The largest bundled or generated candidate is about 30 KiB; an attacker's 1 MiB source held
# the orchestrator for minutes in the gate's walks.
MAX_SOURCE_CHARS = 256 << 10


@dataclass(frozen=True)
class GateResult:
    backend: str | None  # "triton" | "cuda" | "cuda-inline" | None (no marker found)
    findings: tuple[Finding, ...] = ()
    notes: tuple[str, ...] = ()  # worth saying, not a reason to reject (an unused helper kernel)

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def codes(self) -> frozenset[str]:
        return frozenset(f.code for f in self.findings)

    def to_dict(self) -> dict:
        findings = [f.to_dict() for f in self.findings]
        return {
            "backend": self.backend,
            "ok": self.ok,
            "findings": findings,
            "notes": [*self.notes],
        }


def _parse(source: str) -> ast.Module | SyntaxError:
    try:
        return pyast.parse(source)
    except SyntaxError as e:
        return e
    except ValueError as e:  # NUL bytes in the source
        return SyntaxError(str(e))
    except RecursionError:
        return SyntaxError("the source nests too deeply to inspect")


def detect_backend(source: str) -> str | None:
    """The first backend whose markers are present: cuda-inline, cuda, triton; else None."""
    tree = _parse(source)
    try:
        return None if isinstance(tree, SyntaxError) else SourceModel(tree).backend()
    except RecursionError:
        return None


def check_source(
    source: str, *, backend: str | None = None, allow_torch: Iterable[str] = ()
) -> GateResult:
    """Inspect a candidate's source without running it.

    ``backend`` forces one backend (reported as the result's backend; its markers must be
    present, else NO_KERNEL); ``allow_torch`` lists the torch ops the problem allows (its
    ``ALLOW_TORCH``: "matmul" also allows mm/bmm/@/F.linear/addmm, "conv2d" also nn.Conv2d).
    """
    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {BACKENDS}")
    if len(source) > MAX_SOURCE_CHARS:  # the gate's walks grow with the source: bound them
        message = (
            f"the source is {len(source) // 1024} KiB; candidates may be at most "
            f"{MAX_SOURCE_CHARS // 1024} KiB"
        )
        return GateResult(None, (Finding(reasons.SYNTAX_ERROR, message, None),))
    tree = _parse(source)
    if isinstance(tree, SyntaxError):
        message = f"syntax error: {tree.msg}; fix the source"
        return GateResult(None, (Finding(reasons.SYNTAX_ERROR, message, tree.lineno),))
    try:
        return _check(tree, backend, allow_torch)
    except RecursionError:  # the walks recurse; absurdly deep expressions are rejected
        message = "the source nests too deeply to inspect; split long expressions"
        return GateResult(backend, (Finding(reasons.SYNTAX_ERROR, message, None),))


def _check(tree: ast.Module, backend: str | None, allow_torch: Iterable[str]) -> GateResult:
    src = SourceModel(tree)
    gate = Gate(src, allow_torch)
    if backend is None and (backend := src.backend()) is None:
        message = "no kernel found: write a @triton.jit function, a CUDA __global__ source for "
        gate.add(reasons.NO_KERNEL, None, message + "load_kernel or a load_inline extension")
    elif not src.markers[backend]:
        message = f"backend {backend!r} was requested but no {MARKER_TEXT[backend]} was found"
        gate.add(reasons.NO_KERNEL, None, message)
    if not any(isinstance(n, ast.ClassDef) and n.name == "ModelNew" for n in src.nodes):
        message = "no class ModelNew; define class ModelNew(nn.Module) with forward"
        gate.add(reasons.NO_MODELNEW, None, message)
    gate.visit(tree)
    gate.report_unlaunched()
    return GateResult(backend, gate.result(), tuple(gate.notes))
