"""Honest candidates written the way real projects write Triton must be accepted.

Each file in tests/honest/ is a standalone candidate (``class ModelNew`` launching ``@triton.jit``
kernels) in the style of one public project: the Triton tutorials, Liger-Kernel, FlagGems, or
TorchInductor's generated code, plus one in-house "dataclass/enum" style. Its module docstring says
which style and which idioms it exercises; a ``# problem: level1/05_softmax`` comment line names
the bundled problem it solves. Every kernel is correct at the problem's cpu size and at its
hold-out sizes (they were checked against the reference outside the evaluator, with the Triton
interpreter's gaps patched, and compiled for sm_90).

The evaluator must not reject them (shared/docs/evaluator-threats.md, last paragraph): a gate or an
interpreter path that rejects good code wastes paid rounds and teaches the Coder wrong rules.
So, per file:

- the static gate has no finding for it, under the problem's ``ALLOW_TORCH``;
- ``evaluate(..., sandbox="auto")`` accepts it.

A failure prints the gate's findings (code, line, message, the offending source line) or the
verdict's reason codes, messages and the failing trials' last error line.

Slow (one evaluation per file, ~2-5 s each on a 2-core CPU): marked ``slow``; select this module by
path, e.g. ``pytest -q tests/test_honest_third_party.py -k liger_rms_norm``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from paths import TESTS

from kernelloop.kernelbench.loader import load_one
from kernelloop.sandbox import static_gate
from kernelloop.sandbox.evaluate import evaluate

pytestmark = [pytest.mark.slow]

HONEST = TESTS / "honest"
PROBLEM_LINE = re.compile(r"^# problem: (\S+)\s*$", re.MULTILINE)
# An honest kernel takes seconds here; a hang must not eat the suite's budget.
EVAL_TIMEOUT_S = 60


def _files() -> list[Path]:
    return sorted(HONEST.glob("*.py"))


def _problem_id(source: str) -> str:
    found = PROBLEM_LINE.findall(source)
    assert len(found) == 1, f"expected one '# problem: <id>' line, found {found}"
    return found[0]


def _params() -> list:
    return [pytest.param(p, id=p.stem) for p in _files()]


def test_honest_files_are_well_formed():
    """Each file: a docstring first, one problem line naming a bundled problem, a ModelNew."""
    files = _files()
    assert len(files) >= 20, f"only {len(files)} honest candidates in {HONEST}"
    problems = set()
    for path in files:
        source = path.read_text()
        assert source.lstrip().startswith('"""'), f"{path.name}: no module docstring first"
        tree = ast.parse(source)
        doc = ast.get_docstring(tree) or ""
        assert "style" in doc.splitlines()[0], f"{path.name}: first docstring line names no style"
        assert any(isinstance(n, ast.ClassDef) and n.name == "ModelNew" for n in tree.body)
        problems.add(load_one(_problem_id(source)).id)
    assert len(problems) >= 15, f"the honest files cover only {len(problems)} problems"


def _gate_report(source: str, findings) -> str:
    lines = source.splitlines()
    out = []
    for f in findings:
        text = lines[f.line - 1].strip() if f.line and 0 < f.line <= len(lines) else ""
        out.append(f"  {f.code} (line {f.line}): {f.message}\n      | {text}")
    return "\n".join(out)


@pytest.mark.parametrize("path", _params())
def test_static_gate_accepts_honest_candidate(path: Path):
    source = path.read_text()
    problem = load_one(_problem_id(source))
    result = static_gate.check_source(source, allow_torch=problem.allow_torch)
    assert result.backend == "triton", f"{path.name}: backend {result.backend!r}"
    if result.findings:
        report = _gate_report(source, result.findings)
        pytest.fail(
            f"{path.name} ({problem.id}) falsely rejected by the static gate:\n{report}",
            pytrace=False,
        )


def _verdict_report(verdict) -> str:
    """Each distinct reason once (the per-trial prefix dropped), then each distinct trial error."""
    out = [f"  codes: {verdict.codes}"]
    seen: set[str] = set()
    for r in verdict.reasons:
        message = re.sub(r"^trial [\w.-]+: ", "", r.message).replace("\n", " / ")
        if (r.code, message) not in seen:
            seen.add((r.code, message))
            out.append(f"  {r.code}: {message[:1000]}")
    for f in verdict.static:
        out.append(f"  static {f.get('code')} (line {f.get('line')}): {f.get('message')}")
    if verdict.correctness is not None:
        for t in verdict.correctness.trials:
            if t.passed:
                continue
            lines = t.message.strip().splitlines()
            last = lines[-1] if lines else f"max_abs_err={t.max_abs_err} mismatched={t.mismatched}"
            if last not in seen:
                seen.add(last)
                out.append(f"  trial {t.name}: {last[:400]}")
    return "\n".join(out)


@pytest.mark.parametrize("path", _params())
def test_evaluator_accepts_honest_candidate(path: Path):
    source = path.read_text()
    problem = load_one(_problem_id(source))
    verdict = evaluate(problem, source, sandbox="auto", timeout_s=EVAL_TIMEOUT_S)
    if not verdict.accepted:
        report = _verdict_report(verdict)
        pytest.fail(
            f"{path.name} ({problem.id}) falsely rejected by the evaluator:\n{report}",
            pytrace=False,
        )
    trials = verdict.correctness.trials
    assert trials and all(t.passed for t in trials)
    assert any(t.name.startswith("holdout") for t in trials), "no hold-out trial ran"
