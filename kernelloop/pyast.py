"""``ast.parse`` and compiling a tree, safe to call from several threads at once.

CPython 3.11 keeps the AST converter's recursion counter in interpreter-wide state. When the
garbage collector runs a finalizer in the middle of a conversion, another thread can enter the
converter, and one of them fails with ``SystemError: AST constructor recursion depth mismatch``
(python/cpython#106905). A campaign proposes candidates on a thread pool, and every proposal
reads the problem with ``ast``; so every conversion in kernelloop goes through this one lock.
Compiling source text straight to bytecode does not build Python AST objects and needs no lock.
"""

from __future__ import annotations

import ast
import threading
from types import CodeType

# Re-entrant: a finalizer that runs during a conversion may itself parse on the same thread.
_LOCK = threading.RLock()


def parse(source: str, filename: str = "<unknown>", mode: str = "exec") -> ast.AST:
    """``ast.parse``, one conversion at a time."""
    with _LOCK:
        return ast.parse(source, filename=filename, mode=mode)


def compile_tree(tree: ast.AST, filename: str, mode: str = "exec") -> CodeType:
    """``compile`` of an AST (which converts it back), one conversion at a time."""
    with _LOCK:
        return compile(tree, filename, mode)
