"""One problem = one KernelBench-format Python file, plus kernelloop's optional names.

A :class:`Problem` holds the file's source and the optional declarations (``SIZES``, ``HOLDOUT``,
``TOLERANCE``, ``ALLOW_TORCH``, ``DTYPE``, ``INPUT_DISTRIBUTIONS``). :meth:`Problem.instantiate`
executes the file in a fresh module with the size overrides applied; that happens only in trusted
code (the reference worker, the hygiene check), never next to a candidate.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import types
from pathlib import Path
from typing import Any

DTYPES = ("float32", "float16", "bfloat16")
DEFAULT_TOLERANCE = {
    "float32": {"atol": 1e-4, "rtol": 1e-4},
    "float16": {"atol": 1e-2, "rtol": 1e-2},
    "bfloat16": {"atol": 1e-2, "rtol": 1e-2},
}
DISTRIBUTIONS = ("given", "scaled", "sparse")
GPU_SIZE = "gpu"
# kernelloop's optional names; every other top-level literal is an overridable size constant.
DECLARATIONS = frozenset(
    {"SIZES", "HOLDOUT", "TOLERANCE", "ALLOW_TORCH", "DTYPE", "INPUT_DISTRIBUTIONS", "ALLOW_TF32"}
)  # the name of the default profile: the module constants, unchanged


class ProblemError(ValueError):
    """The problem file is malformed or an override does not fit it."""


@dataclasses.dataclass(frozen=True)
class Problem:
    id: str  # e.g. "level1/01_relu" for bundled problems, else the file stem
    path: Path
    source: str
    constants: dict[str, Any]  # module-level size constants (literal ints/floats/bools/strs)
    sizes: dict[str, dict[str, Any]]
    holdout: tuple[dict[str, Any], ...]
    dtype: str
    tolerance: dict[str, float]
    allow_torch: tuple[str, ...]
    distributions: tuple[str, ...]
    allow_tf32: bool
    summary: str

    @property
    def source_hash(self) -> str:
        return hashlib.sha256(self.source.encode()).hexdigest()[:16]

    def overrides_for(self, size: str | None, sets: dict[str, Any] | None = None) -> dict[str, Any]:
        """Constant overrides for a named size profile plus ``--set`` values (later wins)."""
        merged: dict[str, Any] = {}
        if size and size != GPU_SIZE:
            if size not in self.sizes:
                known = ", ".join([GPU_SIZE, *self.sizes]) or GPU_SIZE
                raise ProblemError(f"{self.id} has no size {size!r}; known sizes: {known}")
            merged.update(self.sizes[size])
        for name, value in (sets or {}).items():
            if name not in self.constants:
                known = ", ".join(self.constants) or "(none)"
                raise ProblemError(
                    f"--set {name}=...: {self.id} has no module constant {name!r}; "
                    f"its constants are: {known}"
                )
            merged[name] = value
        return merged

    def instantiate(self, overrides: dict[str, Any] | None = None) -> types.ModuleType:
        """Execute the problem file in a fresh module with ``overrides`` assigned as globals."""
        module = types.ModuleType(f"kernelloop_problem_{self.source_hash}")
        module.__file__ = str(self.path)
        tree = _with_constants(ast.parse(self.source, filename=str(self.path)), overrides or {})
        code = compile(tree, str(self.path), "exec")
        exec(code, module.__dict__)  # trusted: problem files, never candidates
        for required in ("Model", "get_inputs", "get_init_inputs"):
            if not hasattr(module, required):
                raise ProblemError(f"{self.path}: a problem must define {required}")
        return module

    def coder_source(self, overrides: dict[str, Any] | None = None) -> str:
        """The source an agent may see: ``HOLDOUT`` removed (hold-out sizes stay unseen), size
        constants rewritten to the evaluated values."""
        tree = ast.parse(self.source)
        drop: set[int] = set()
        for node in tree.body:
            targets = node.targets if isinstance(node, ast.Assign) else []
            if any(isinstance(t, ast.Name) and t.id == "HOLDOUT" for t in targets):
                drop.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
        lines = self.source.splitlines()
        for node in tree.body:
            if (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id in (overrides or {})
                and node.lineno == node.end_lineno
            ):
                name = node.targets[0].id
                lines[node.lineno - 1] = f"{name} = {overrides[name]!r}"
        return "\n".join(line for i, line in enumerate(lines, 1) if i not in drop) + "\n"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "path": str(self.path),
            "summary": self.summary,
            "dtype": self.dtype,
            "tolerance": self.tolerance,
            "sizes": self.sizes,
            "holdout": list(self.holdout),
            "allow_torch": list(self.allow_torch),
            "distributions": list(self.distributions),
            "constants": self.constants,
            "source_hash": self.source_hash,
        }


def parse_value(text: str) -> Any:
    """Parse a ``--set NAME=VALUE`` value: a Python literal, else the raw string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def load_file(path: str | Path, *, problem_id: str | None = None) -> Problem:
    """Read one problem file. Declarations are read with ``ast`` so loading runs no code."""
    path = Path(path)
    if not path.is_file():
        raise ProblemError(f"no such problem file: {path}")
    source = path.read_text()
    try:
        tree = ast.parse(source, filename=str(path))
    except SyntaxError as exc:
        raise ProblemError(f"{path}:{exc.lineno}: syntax error: {exc.msg}") from None

    names = _module_literals(tree)
    defined = {n.name for n in tree.body if isinstance(n, ast.ClassDef | ast.FunctionDef)}
    missing = {"Model", "get_inputs", "get_init_inputs"} - defined
    if missing:
        raise ProblemError(f"{path} is not a KernelBench problem: missing {sorted(missing)}")

    dtype = names.get("DTYPE", "float32")
    if dtype not in DTYPES:
        raise ProblemError(f"{path}: DTYPE must be one of {DTYPES}, not {dtype!r}")
    tolerance = dict(DEFAULT_TOLERANCE[dtype])
    tolerance.update(names.get("TOLERANCE", {}))
    sizes = names.get("SIZES", {})
    holdout = names.get("HOLDOUT", [])
    distributions = tuple(names.get("INPUT_DISTRIBUTIONS", DISTRIBUTIONS))
    unknown = set(distributions) - set(DISTRIBUTIONS)
    if unknown:
        raise ProblemError(f"{path}: unknown INPUT_DISTRIBUTIONS {sorted(unknown)}")
    constants = {
        k: v
        for k, v in names.items()
        if k not in DECLARATIONS and isinstance(v, int | float | bool | str)
    }
    doc = ast.get_docstring(tree) or ""
    return Problem(
        id=problem_id or path.stem,
        path=path.resolve(),
        source=source,
        constants=constants,
        sizes={str(k): dict(v) for k, v in sizes.items()},
        holdout=tuple(dict(h) for h in holdout),
        dtype=dtype,
        tolerance=tolerance,
        allow_torch=tuple(names.get("ALLOW_TORCH", ())),
        distributions=distributions,
        allow_tf32=bool(names.get("ALLOW_TF32", False)),
        summary=doc.strip().splitlines()[0] if doc.strip() else "",
    )


def _with_constants(tree: ast.Module, overrides: dict[str, Any]) -> ast.Module:
    """Rewrite top-level ``NAME = literal`` assignments so derived constants follow overrides."""
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id in overrides
        ):
            node.value = ast.copy_location(ast.Constant(overrides[node.targets[0].id]), node.value)
    return tree


def _module_literals(tree: ast.Module) -> dict[str, Any]:
    """Top-level ``NAME = <literal>`` assignments (later ones win, as at run time)."""
    found: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if not isinstance(target, ast.Name):
            continue
        try:
            found[target.id] = ast.literal_eval(value)
        except ValueError:
            continue  # computed constants (e.g. dim = 4 * hidden) are not overridable by name
    return found
