"""Parsing Python source from several threads at once (a campaign proposes on a thread pool).

CPython 3.11's AST converter counts its recursion in interpreter-wide state; a finalizer run by
the garbage collector mid-conversion lets another thread in, and one of them raises
``SystemError: AST constructor recursion depth mismatch``. A CI run failed that way in a campaign.
"""

from __future__ import annotations

import ast
import gc
import sys
import threading

from paths import REPO

from kernelloop import pyast

# The packages kernelloop installs (pyproject's package-dir), read for direct conversions.
PACKAGES = (
    "kernelloop",
    "kernelbench",
    "sandbox",
    "feedback",
    "agents",
    "library",
    "kernels",
    "modules",
    "dashboard",
)
# Calls of the builtin ``compile`` on source *text*: bytecode straight from text builds no
# Python AST objects, so these need no lock. A new call site must be added here with its reason.
TEXT_COMPILES = {
    "kernelloop/capture/sizes.py",  # an export guard's expression text
    "kernelloop/capture/emit.py",  # a captured problem's text
    "kernelloop/capture/guards.py",  # export guards written out as text
    "sandbox/candidate_module.py",  # a candidate file's text, in the worker
    "library/dispatcher.py",  # an entry's kernel file text
    "library/loaded.py",  # an entry's kernel file text
    "feedback/candidate_resources.py",  # a candidate's text, in the compile job
}


class _Finalized:
    """A cycle with a finalizer: collecting it runs Python code, which lets another thread in."""

    def __init__(self) -> None:
        self.me = self

    def __del__(self) -> None:
        sum(range(50))


def test_parsing_from_many_threads_never_fails():
    source = (REPO / "kernelbench" / "problem.py").read_text()
    errors: list[BaseException] = []

    def work() -> None:
        for _ in range(150):
            try:
                for _ in range(20):
                    _Finalized()
                pyast.compile_tree(pyast.parse(source), "<t>")
            except SystemError as exc:
                errors.append(exc)
                return

    threshold, interval = gc.get_threshold(), sys.getswitchinterval()
    gc.set_threshold(50, 5, 5)
    sys.setswitchinterval(1e-6)  # with plain ast.parse this fails within a second on 3.11.7
    try:
        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        gc.set_threshold(*threshold)
        sys.setswitchinterval(interval)
    assert not errors, errors[0]


def _direct_conversions(path) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if (
            isinstance(f, ast.Attribute)
            and f.attr == "parse"
            and getattr(f.value, "id", "") == "ast"
        ):
            found.append(f"{path.relative_to(REPO)}:{node.lineno}: ast.parse")
        if isinstance(f, ast.Name) and f.id == "compile":
            rel = str(path.relative_to(REPO))
            if rel not in TEXT_COMPILES:
                found.append(f"{rel}:{node.lineno}: compile()")
    return found


def test_every_conversion_goes_through_the_lock():
    found = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            if path.name != "pyast.py":
                found += _direct_conversions(path)
    assert not found, "parse through kernelloop.pyast (see its docstring):\n" + "\n".join(found)
