"""The layers only point down, and no two files import each other (lazily or not).

Every import of every module is read from its source, the ones inside functions included
(``TYPE_CHECKING`` blocks excluded: they never run). Layers are assigned per module, since one
folder can hold two layers (``kernelloop/`` holds the settings at the bottom and the CLI at the
top; ``feedback/`` holds hardware facts, which the problem layer's hygiene check and the sandbox
read, above which the feedback that runs jobs in the sandbox sits). docs/architecture.md says
what each layer is for.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from paths import REPO

FOLDERS = {
    "kernelloop": "kernelloop",
    "kernelbench": "kernelloop.kernelbench",
    "sandbox": "kernelloop.sandbox",
    "feedback": "kernelloop.feedback",
    "agents": "kernelloop.agents",
    "library": "kernelloop.library",
    "kernels": "kernelloop.kernels",
    "modules": "kernelloop.modules",
    "dashboard": "kernelloop.dashboard",
}
# What a GPU is and what a compiler says about a kernel: no problem, sandbox or agent in them.
HARDWARE_FACTS = ("gpu_specs", "roofline", "nvml", "compile_check", "static_resources")
# (module prefix, layer): the longest matching prefix wins.
LAYERS = [
    ("kernelloop", 0),  # the root package: __version__, the lazy patch entry points
    ("kernelloop.settings", 0),
    ("kernelloop.pyast", 0),  # thread-safe ast.parse: every layer reads Python source
    *[(f"kernelloop.feedback.{m}", 1) for m in HARDWARE_FACTS],
    ("kernelloop.sandbox.nvrtc", 1),  # NVRTC compile and load: a toolchain wrapper
    ("kernelloop.kernelbench", 2),
    ("kernelloop.sandbox", 3),
    # a user's model -> problems: reads kernelbench and hardware facts; times units with the
    # sandbox's one benchmarking routine on a GPU
    ("kernelloop.capture", 3.5),
    ("kernelloop.feedback", 4),
    ("kernelloop.sandbox.static_job", 4),  # feedback's compile job, run in a sandbox worker
    ("kernelloop.library", 5),
    ("kernelloop.kernels", 5.5),  # seed Triton kernels: modules launch them, templates copy them
    ("kernelloop.modules", 6),
    ("kernelloop.model_patch", 6),  # beside modules: swaps a model's calls for library kernels
    ("kernelloop.runs", 7),
    ("kernelloop.agents", 8),
    ("kernelloop.dashboard", 9),
    *[
        (f"kernelloop.{m}", 10)
        for m in (
            "cli",
            "cli_common",
            "campaign_cli",
            "capture_cli",
            "profile_cli",
            "dashboard_cli",
            "doctor",
            "report_text",
        )
    ],  # fmt: skip
    ("kernelloop.runs.cli", 10),
    ("kernelloop.library.cli", 10),
    ("kernelloop.apply_cli", 10),
]

# Upward edges allowed by name: the root package's lazy ``__getattr__`` hands out
# ``kernelloop.patch`` / ``unpatch``. An entry point, not a dependency: importing ``kernelloop``
# imports nothing (tests/test_imports.py), and model_patch never imports the root.
ENTRY_POINTS = {("kernelloop", "kernelloop.model_patch")}


def _modules() -> dict[str, Path]:
    found = {}
    for folder, package in FOLDERS.items():
        for path in (REPO / folder).rglob("*.py"):
            parts = list(path.relative_to(REPO / folder).with_suffix("").parts)
            if "problems" in parts or (folder == "library" and "kernels" in parts):
                continue  # problem files and shipped library entries are data, not code
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([package, *parts])] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for n in ast.walk(node)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                full = f"{target}.{alias.name}"
                out.add(full if full in modules else target)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return {m for m in out if m in modules and m != name}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _layer(module: str) -> float:
    matches = [(len(p), layer) for p, layer in LAYERS if module == p or module.startswith(p + ".")]
    assert matches, f"{module} has no layer: add it to LAYERS"
    return max(matches)[1]


def test_every_import_points_down_or_sideways():
    upward = [
        f"{a} (layer {_layer(a)}) imports {b} (layer {_layer(b)})"
        for a, targets in _graph().items()
        for b in targets
        if _layer(b) > _layer(a) and (a, b) not in ENTRY_POINTS
    ]
    assert not upward, "\n".join(sorted(upward))


def test_no_files_import_each_other():
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    loops: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan: every strongly connected set of two or more files
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            loop = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                loop.append(w)
                if w == v:
                    break
            if len(loop) > 1:
                loops.append(sorted(loop))

    for module in graph:
        if module not in index:
            visit(module)
    assert not loops, loops


def test_the_checker_sees_lazy_imports():
    graph = _graph()
    # cli.py imports the evaluator inside a command only: it must still count as an edge.
    assert "kernelloop.sandbox.evaluate" in graph["kernelloop.cli"]
    assert defaultdict(set, graph)["kernelloop.kernelbench.autosize"] >= {
        "kernelloop.kernelbench.probe"
    }


def test_every_error_kernelloop_raises_is_a_kernelloop_error():
    import importlib

    from kernelloop.errors import KernelloopError

    found = []
    for name, path in _modules().items():
        tree = ast.parse(path.read_text())
        errors = [
            n.name
            for n in tree.body
            if isinstance(n, ast.ClassDef)
            and n.name.endswith(("Error", "NotFound", "NotEvaluable"))
            and not n.name.startswith("_")
        ]
        if errors:
            module = importlib.import_module(name)
            found += [
                (name, e) for e in errors if not issubclass(getattr(module, e), KernelloopError)
            ]
    assert not found, found
