"""The resources of every kernel a candidate file defines, found by reading the file.

:func:`from_candidate_source` reads the file with ``ast`` and never imports it: CUDA strings
handed to ``load_kernel`` are compiled by NVRTC (the compiler runs, the kernel does not), and
``@triton.jit`` functions are re-declared alone, stripped of decorators, annotations other than
``constexpr`` and non-literal defaults, in a namespace holding only Triton, then given to
Triton's compiler (``static_resources``). Triton's front end still evaluates ``constexpr``
expressions at compile time, so call it inside a sandbox worker for a source nobody has vetted.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import linecache
import re
from collections.abc import Mapping
from typing import Any

from .. import pyast
from .static_resources import (
    TRITON_OPTIONS,
    StaticResources,
    first_lines,
    from_cuda_source,
    from_triton,
    triton_arch,
)

NEEDS_LAUNCH = (
    "needs a launch to know argument types: pass signatures={kernel: {arg: type or constexpr "
    "value}}, as an interpreted run records them (kernelloop profile, sandbox/static_job.py)"
)


def from_candidate_source(
    source: str,
    backend: str | None = None,
    *,
    signatures: Mapping[str, Mapping[str, Any]] | None = None,
    arch: str = "sm_90",
) -> list[StaticResources]:
    """Resources of every kernel a candidate file defines, found by reading it (never importing).

    ``backend``: "cuda", "cuda-inline" or "triton"; detected like the static gate when None.
    CUDA: each ``load_kernel(SRC, "name", options=...)`` whose source and name are string
    literals (or module-level names bound to them) is compiled for ``arch``. Triton: each
    ``@triton.jit`` function listed in ``signatures`` (arguments as in :func:`from_triton`, plus
    optional ``num_warps``/``num_stages``) is compiled; the others get a note saying what is
    missing. A kernel that fails to compile is reported with the error in its notes.
    """
    tree = pyast.parse(source)
    if backend is None:
        from kernelloop.sandbox.static_gate import detect_backend

        backend = detect_backend(source)
    if backend in ("cuda", "cuda-inline"):
        return _cuda_kernels(tree, backend, arch)
    if backend == "triton":
        return _triton_kernels(tree, signatures or {}, int(re.sub(r"\D", "", arch) or 90))
    return []


def _constants(tree: ast.Module) -> dict[str, Any]:
    """Module-level names bound once to a literal (strings, numbers, tuples of them)."""
    values: dict[str, Any] = {}
    counts: dict[str, int] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if isinstance(t, ast.Name):
                    counts[t.id] = counts.get(t.id, 0) + 1
                    with contextlib.suppress(ValueError, TypeError, SyntaxError, MemoryError):
                        values[t.id] = ast.literal_eval(node.value)
    return {k: v for k, v in values.items() if counts[k] == 1}


def _resolve(node: ast.AST | None, constants: dict[str, Any]) -> Any:
    if node is None:
        return None
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _resolve(node.left, constants), _resolve(node.right, constants)
        return left + right if isinstance(left, str) and isinstance(right, str) else None
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError):
        return None


def _call_name(call: ast.Call) -> str:
    f = call.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""


def _cuda_kernels(tree: ast.Module, backend: str, arch: str) -> list[StaticResources]:
    from kernelloop.sandbox.nvrtc import CudaCompileError

    constants = _constants(tree)
    jobs: list[tuple[str | None, str | None, tuple[str, ...], int]] = []
    for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
        kw = {k.arg: k.value for k in call.keywords if k.arg}
        if _call_name(call) == "load_kernel":
            src = _resolve(call.args[0] if call.args else kw.get("source"), constants)
            name = _resolve(call.args[1] if len(call.args) > 1 else kw.get("name"), constants)
            opts = _resolve(kw.get("options"), constants) or ()
            jobs.append((src, name, tuple(opts), call.lineno))
        elif _call_name(call) == "load_inline":
            cuda = _resolve(kw.get("cuda_sources"), constants)
            for text in [cuda] if isinstance(cuda, str) else list(cuda or []):
                for name in re.findall(r"__global__[^;{}]*?\b(\w+)\s*\(", text or ""):
                    jobs.append((text, name, (), call.lineno))
    out: list[StaticResources] = []
    for src, name, opts, line in jobs:
        label = name if isinstance(name, str) else f"<kernel at line {line}>"
        if not isinstance(src, str) or not isinstance(name, str):
            note = f"line {line}: source or kernel name is not a literal; needs the GPU path"
            out.append(StaticResources(label, backend, arch, notes=[note]))
            continue
        try:
            res = from_cuda_source(src, name, arch, options=opts)
        except CudaCompileError as exc:
            res = StaticResources(name, backend, arch, notes=[first_lines(str(exc))])
            if backend == "cuda-inline":
                res.notes.append("load_inline sources include torch headers NVRTC lacks")
        res.backend = backend
        out.append(res)
    return out


def _triton_kernels(
    tree: ast.Module, signatures: Mapping[str, Mapping[str, Any]], arch: int
) -> list[StaticResources]:
    kernels, namespace = _declare_triton_kernels(tree)
    out: list[StaticResources] = []
    for name in kernels:
        if name not in signatures:
            res = StaticResources(name, "triton", triton_arch(arch), notes=[NEEDS_LAUNCH])
            out.append(res)
            continue
        given = dict(signatures[name])
        options = {k: given.pop(k) for k in TRITON_OPTIONS if k in given}
        try:
            res = from_triton(
                namespace[name],
                given,
                arch=arch,
                num_warps=options.get("num_warps"),
                num_stages=options.get("num_stages"),
            )
        except Exception as exc:  # a compile error is this kernel's result, not ours
            res = StaticResources(name, "triton", triton_arch(arch), notes=[first_lines(exc)])
        res.kernel = name
        out.append(res)
    return out


def _is_jit(deco: ast.AST) -> bool:
    target = deco.func if isinstance(deco, ast.Call) else deco
    return (isinstance(target, ast.Attribute) and target.attr == "jit") or (
        isinstance(target, ast.Name) and target.id == "jit"
    )


def _is_constexpr_annotation(node: ast.AST | None) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "constexpr") or (
        isinstance(node, ast.Name) and node.id == "constexpr"
    )


def _declare_triton_kernels(tree: ast.Module) -> tuple[list[str], dict[str, Any]]:
    """Re-declare the file's ``@triton.jit`` functions alone and wrap them as JITFunctions.

    What runs: ``import triton...`` statements, literal constants, ``X = tl.constexpr(literal)``
    and the ``def`` statements themselves, with no decorators, no annotations but ``constexpr``
    and only literal defaults, so defining them evaluates nothing the candidate wrote.
    """
    from triton.runtime.jit import JITFunction

    body: list[ast.stmt] = []
    kernels: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Import) and all(
            a.name.split(".")[0] == "triton" for a in node.names
        ):
            body.append(node)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "triton":
            body.append(node)
        elif isinstance(node, ast.Assign) and _safe_value(node.value):
            body.append(node)
        elif isinstance(node, ast.FunctionDef) and any(map(_is_jit, node.decorator_list)):
            body.append(_sanitised(node))
            kernels.append(node.name)
    module = ast.fix_missing_locations(ast.Module(body=body, type_ignores=[]))
    text = ast.unparse(module) + "\n"
    filename = f"<kernelloop-triton-{hashlib.sha256(text.encode()).hexdigest()[:12]}>"
    # JITFunction reads its source through inspect, which finds it in linecache.
    linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    namespace: dict[str, Any] = {"__name__": "kernelloop_candidate_kernels"}
    exec(compile(text, filename, "exec"), namespace)  # noqa: S102 - see the docstring
    for name in kernels:  # wrap after all are defined: kernels call each other by global name
        namespace[name] = JITFunction(namespace[name])
    return kernels, namespace


def _safe_value(node: ast.AST) -> bool:
    with contextlib.suppress(ValueError, TypeError, SyntaxError, MemoryError):
        ast.literal_eval(node)
        return True
    if isinstance(node, ast.Call) and _is_constexpr_annotation(node.func) and not node.keywords:
        return all(_safe_value(a) for a in node.args)
    return False


def _sanitised(fn: ast.FunctionDef) -> ast.FunctionDef:
    args = fn.args
    every = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    for a in every:
        if not _is_constexpr_annotation(a.annotation):
            a.annotation = None
    args.defaults = [d if _safe_value(d) else ast.Constant(None) for d in args.defaults]
    args.kw_defaults = [
        d if d is None or _safe_value(d) else ast.Constant(None) for d in args.kw_defaults
    ]
    fn.decorator_list, fn.returns = [], None
    return fn
