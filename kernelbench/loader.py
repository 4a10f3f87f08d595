"""Find problems: one file, a folder, the bundled suite, or a KernelBench checkout.

Specs accepted by :func:`load` (and so by every CLI command that takes PROBLEM):

- a path to a ``.py`` file or a folder of them (``solutions/`` folders are skipped);
- a bundled id: ``level1/01_relu``, ``01_relu`` when unambiguous, or a whole level ``level1``;
- ``bundled`` (every bundled problem).

A KernelBench checkout keeps its problems in ``KernelBench/level{N}/``; :func:`load_kernelbench`
reads them unchanged.
"""

from __future__ import annotations

from pathlib import Path

from .problem import Problem, ProblemError, load_file

BUNDLED_ROOT = Path(__file__).resolve().parent / "problems"
LEVELS = ("level1", "level2", "level3", "modules")


def _natural_key(path: Path) -> tuple:
    # KernelBench names files "1_...", "2_...", "10_...": sort by the number, not the text.
    head = path.stem.split("_", 1)[0]
    return (int(head), path.stem) if head.isdigit() else (float("inf"), path.stem)


def _problem_files(folder: Path) -> list[Path]:
    files = [p for p in folder.glob("*.py") if not p.name.startswith(("_", "."))]
    return sorted(files, key=_natural_key)


def bundled_ids() -> list[str]:
    return [f"{lvl}/{p.stem}" for lvl in LEVELS for p in _problem_files(BUNDLED_ROOT / lvl)]


def solution_path(problem: Problem) -> Path | None:
    """The known-good solution shipped next to a bundled problem, if any."""
    candidate = problem.path.parent / "solutions" / problem.path.name
    return candidate if candidate.is_file() else None


def _each(files: list[Path], skipped: list[tuple[Path, str]] | None, name) -> list[Problem]:
    """Load every file of a folder; with ``skipped``, a file that is no problem is listed
    there (path, why) instead of stopping the rest."""
    found = []
    for path in files:
        try:
            found.append(load_file(path, problem_id=name(path)))
        except ProblemError as exc:
            if skipped is None:
                raise
            skipped.append((path, str(exc)))
    return found


def load(spec: str | Path, skipped: list[tuple[Path, str]] | None = None) -> list[Problem]:
    """Resolve ``spec`` to problems (see the module docstring); raises ProblemError if none.
    ``skipped`` collects the files of a folder that do not load, instead of raising."""
    text = str(spec)
    if text == "bundled" or text in LEVELS:  # names win over same-named folders (./modules)
        return (
            [load_one(i) for i in bundled_ids()] if text == "bundled" else load(BUNDLED_ROOT / text)
        )
    path = Path(text)
    if path.is_file():
        return [load_file(path, problem_id=_bundled_id(path))]
    if path.is_dir():
        files = _problem_files(path)
        if not files:
            raise ProblemError(f"{path} holds no problem files (*.py)")
        found = _each(files, skipped, _bundled_id)
        if not found:
            raise ProblemError(f"{path}: none of its {len(files)} files is a problem")
        return found
    return [load_one(text)]


def load_one(spec: str) -> Problem:
    """One bundled problem by id (``level1/01_relu``) or unambiguous stem (``01_relu``)."""
    ids = bundled_ids()
    matches = [i for i in ids if i == spec or i.split("/", 1)[1] == spec]
    if not matches:
        matches = [i for i in ids if spec in i]
    if len(matches) != 1:
        hint = (
            f"did you mean one of: {', '.join(matches[:8])}"
            if matches
            else ("see `kernelloop problems list`")
        )
        raise ProblemError(f"no single problem matches {spec!r}: {hint}")
    level, stem = matches[0].split("/", 1)
    return load_file(BUNDLED_ROOT / level / f"{stem}.py", problem_id=matches[0])


def load_kernelbench(
    checkout: str | Path, level: int | None = None, skipped: list[tuple[Path, str]] | None = None
) -> list[Problem]:
    """Problems of a KernelBench checkout (``<checkout>/KernelBench/level{N}/*.py``)."""
    root = Path(checkout)
    base = root / "KernelBench" if (root / "KernelBench").is_dir() else root
    levels = [f"level{level}"] if level else sorted(p.name for p in base.glob("level*"))
    problems: list[Problem] = []
    for name in levels:
        folder = base / name
        if not folder.is_dir():
            raise ProblemError(f"{folder} does not exist: is {root} a KernelBench checkout?")
        files = _problem_files(folder)
        problems += _each(files, skipped, lambda p, name=name: f"kernelbench/{name}/{p.stem}")
    if not problems:
        raise ProblemError(f"no problems found under {base}")
    return problems


def _bundled_id(path: Path) -> str | None:
    try:
        rel = path.resolve().relative_to(BUNDLED_ROOT)
    except ValueError:
        return None
    return str(rel.with_suffix(""))
