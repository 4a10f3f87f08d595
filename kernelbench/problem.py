"""One problem = one KernelBench-format Python file, plus kernelloop's optional names.

A :class:`Problem` holds the file's source and the optional declarations (``SIZES``, ``HOLDOUT``,
``TOLERANCE``, ``ALLOW_TORCH``, ``DTYPE``, ``INPUT_DISTRIBUTIONS``, ``EVAL_MODE``).
:meth:`Problem.instantiate`
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

from .. import pyast
from . import inline_sizes
from .errors import ProblemError

DTYPES = ("float32", "float16", "bfloat16")
DEFAULT_TOLERANCE = {
    "float32": {"atol": 1e-4, "rtol": 1e-4},
    "float16": {"atol": 1e-2, "rtol": 1e-2},
    "bfloat16": {"atol": 1e-2, "rtol": 1e-2},
}
DISTRIBUTIONS = ("given", "scaled", "sparse")
GPU_SIZE = "gpu"
AUTO_SIZE = "auto"  # derived for a CPU by shrinking the size constants (autosize.py)
# kernelloop's optional names; every other top-level literal is an overridable size constant.
DECLARATIONS = frozenset(
    {
        "SIZES",
        "HOLDOUT",
        "TOLERANCE",
        "ALLOW_TORCH",
        "DTYPE",
        "INPUT_DISTRIBUTIONS",
        "ALLOW_TF32",
        "EVAL_MODE",
        "REAL_SIZE",
    }
)  # the name of the default profile: the module constants, unchanged


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
    # The reference runs in training mode, as PyTorch builds a module (and KernelBench runs
    # it); ``EVAL_MODE = True`` opts into eval mode, e.g. to evaluate a model with dropout.
    eval_mode: bool = False
    # ``REAL_SIZE = True``: the GPU size is a real workload's (``kernelloop capture`` writes it),
    # not one chosen to benchmark a kernel, so a tiny one is reported rather than refused.
    real_size: bool = False

    @property
    def source_hash(self) -> str:
        return hashlib.sha256(self.source.encode()).hexdigest()[:16]

    def default_size(self, device: str) -> str:
        """The size evaluated when none is asked for: the GPU size on a GPU; on a CPU the
        declared ``SIZES["cpu"]``, else one derived from the constants (``autosize.py``)."""
        if device == "cuda":
            return GPU_SIZE
        return "cpu" if "cpu" in self.sizes else AUTO_SIZE

    def overrides_for(self, size: str | None, sets: dict[str, Any] | None = None) -> dict[str, Any]:
        """Constant overrides for a named size profile plus ``--set`` values (later wins)."""
        merged: dict[str, Any] = {}
        if size == AUTO_SIZE:
            from . import autosize

            try:
                merged.update(autosize.derive(self).overrides)
            except ProblemError:
                if not sets:  # nothing to size it by: say how
                    raise
                # The reference cannot be probed on the meta device; the --set values given
                # size it (the preflight and the reference worker say whether they fit).
        elif size and size != GPU_SIZE:
            if size not in self.sizes:
                known = ", ".join([GPU_SIZE, AUTO_SIZE, *self.sizes])
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
        tree = _with_constants(pyast.parse(self.source, filename=str(self.path)), overrides or {})
        tree = inline_sizes.rewrite(tree, overrides or {})
        code = pyast.compile_tree(tree, str(self.path))
        exec(code, module.__dict__)  # trusted: problem files, never candidates
        for required in ("Model", "get_inputs", "get_init_inputs"):
            if not hasattr(module, required):
                raise ProblemError(f"{self.path}: a problem must define {required}")
        return module

    def coder_source(self, overrides: dict[str, Any] | None = None) -> str:
        """The source an agent may see: ``HOLDOUT`` removed (hold-out sizes stay unseen), size
        constants rewritten to the evaluated values."""
        tree = pyast.parse(self.source)
        drop: set[int] = set()
        for node in tree.body:
            targets = node.targets if isinstance(node, ast.Assign) else []
            if any(isinstance(t, ast.Name) and t.id == "HOLDOUT" for t in targets):
                drop.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
        lines = self.source.splitlines()
        overrides = overrides or {}
        inline_sizes.rewrite_lines(self.source, lines, overrides)  # columns before line edits
        for node in tree.body:
            pairs = _pairs(node)
            if pairs is None or node.lineno != node.end_lineno:
                continue
            if {n for n, _ in pairs} & set(overrides):
                lines[node.lineno - 1] = "\n".join(
                    f"{n} = {overrides[n]!r}"
                    if n in overrides
                    else f"{n} = {ast.get_source_segment(self.source, v)}"
                    for n, v in pairs
                )
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
        tree = pyast.parse(source, filename=str(path))
    except SyntaxError as exc:
        raise ProblemError(f"{path}:{exc.lineno}: syntax error: {exc.msg}") from None

    names = {**inline_sizes.constants(tree), **_module_literals(tree)}
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
        if k not in DECLARATIONS and (isinstance(v, int | float | bool | str) or _int_tuple(v))
    }
    doc = ast.get_docstring(tree) or ""
    if not doc.strip():  # KernelBench documents the Model class, not the module
        model = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Model")
        doc = ast.get_docstring(model) or ""
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
        eval_mode=bool(names.get("EVAL_MODE", False)),
        real_size=bool(names.get("REAL_SIZE", False)),
        summary=doc.strip().splitlines()[0] if doc.strip() else "",
    )


def _with_constants(tree: ast.Module, overrides: dict[str, Any]) -> ast.Module:
    """Rewrite top-level ``NAME = literal`` assignments so derived constants follow overrides."""
    for node in _split_chains(tree).body:
        target = _single_target(node)
        if target is not None and target in overrides:
            value = pyast.parse(repr(overrides[target]), mode="eval").body  # tuples too
            node.value = ast.copy_location(value, node.value)  # type: ignore[union-attr]
    return ast.fix_missing_locations(tree)


def _single_target(node: ast.stmt) -> str | None:
    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        target = node.targets[0]
    elif isinstance(node, ast.AnnAssign) and node.value is not None:
        target = node.target
    else:
        return None
    return target.id if isinstance(target, ast.Name) else None


def _int_tuple(v: Any) -> bool:
    return (
        isinstance(v, tuple)
        and bool(v)
        and all(isinstance(i, int) and not isinstance(i, bool) for i in v)
    )


def _constant_expr(node: ast.expr) -> Any:
    """The value of an expression over literals only (``8192 * 2``, ``(4096 * 2,)``); names,
    calls and anything else raise ValueError (a constant computed from another follows it)."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Tuple | ast.List):
        items = [_constant_expr(e) for e in node.elts]
        return tuple(items) if isinstance(node, ast.Tuple) else items
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        v = _constant_expr(node.operand)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITH:
        left, right = _constant_expr(node.left), _constant_expr(node.right)
        if not all(isinstance(x, int | float) for x in (left, right)):
            raise ValueError("not arithmetic")
        return _ARITH[type(node.op)](left, right)
    raise ValueError("not a constant expression")


_ARITH = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.FloorDiv: lambda a, b: a // b,
    ast.Div: lambda a, b: a / b,
    ast.Mod: lambda a, b: a % b,
}


def _pairs(node: ast.stmt) -> list[tuple[str, ast.expr]] | None:
    """(name, value) of each name a chained or unpacking assignment binds
    (``height = width = 128``, ``height, width = 128, 64``); None for anything else."""
    if not isinstance(node, ast.Assign):
        return None
    pairs: list[tuple[str, ast.expr]] = []
    for target in node.targets:
        if isinstance(target, ast.Name):
            pairs.append((target.id, node.value))
        elif (
            isinstance(target, ast.Tuple)
            and isinstance(node.value, ast.Tuple)
            and len(target.elts) == len(node.value.elts)
            and all(isinstance(t, ast.Name) for t in target.elts)
        ):
            pairs += [(t.id, v) for t, v in zip(target.elts, node.value.elts, strict=True)]  # type: ignore[attr-defined]
        else:
            return None
    return pairs


def _split_chains(tree: ast.Module) -> ast.Module:
    """Chained and unpacking assignments as one assignment per name, so each name is its own
    overridable constant."""
    body: list[ast.stmt] = []
    for node in tree.body:
        pairs = _pairs(node)
        if pairs is not None and len(pairs) > 1:
            for name, value in pairs:
                target = ast.Name(name, ast.Store())
                body.append(ast.copy_location(ast.Assign([target], value), node))
        else:
            body.append(node)
    tree.body = body
    return tree


def _module_literals(tree: ast.Module) -> dict[str, Any]:
    """Top-level ``NAME = <literal>`` assignments (later ones win, as at run time)."""
    found: dict[str, Any] = {}
    for node in _split_chains(tree).body:
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
            try:  # arithmetic over literals: ``input_shape = (8192 * 2,)``
                found[target.id] = _constant_expr(value)
            except (ValueError, ZeroDivisionError, TypeError):
                continue  # computed from other names (dim = 4 * hidden): follows them
    return found
