"""The static gate's walk over one candidate's tree: every node judged by the rule tables.

:class:`Gate` visits the parsed source once, resolving names through :class:`SourceModel` and
:mod:`.gate_reach`, and collects :class:`Finding` s; ``static_gate.check_source`` runs it.
"""

from __future__ import annotations

import ast
import re
import types
from collections.abc import Iterable
from dataclasses import dataclass

from . import gate_names, gate_native, gate_reach, reasons
from .gate_rules import (
    ALLOW_ALIASES,
    ALLOWED_DUNDERS,
    COMPUTE_METHODS,
    COMPUTE_NAMES,
    COMPUTE_NAMESPACES,
    DUNDER_DEFS,
    DYNAMIC_BUILTINS,
    FILE_ATTRS,
    FRAME_ATTRS,
    GOOD_BASES,
    HINT,
    HOST_NAMESPACES,
    KEEP,
    LOAD_KERNEL,
    NAME_BUILTINS,
    NAME_RULES,
    NN_HOLDERS,
    SUBCLASS_ATTRS,
    TORCH_HOST_OK,
    VALUE_READS,
)
from .gate_source import (
    SourceModel,
    base_op,
    dotted,
    is_dunder,
    literal,
    root,
    under,
)


@dataclass(frozen=True)
class Finding:
    code: str  # a reasons.* constant
    message: str  # what was found and what to do instead
    line: int | None = None

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "line": self.line}


MAX_PER_CODE = 20  # findings kept per reason code


class Gate(ast.NodeVisitor):
    """One walk over the tree collects findings; launch bookkeeping is reported at the end."""

    def __init__(self, src: SourceModel, allow_torch: Iterable[str]) -> None:
        self.src = src
        names = allow_torch.split() if isinstance(allow_torch, str) else allow_torch
        self.allowed = {n.strip() for n in names}
        for name in list(self.allowed):
            self.allowed |= ALLOW_ALIASES.get(name, frozenset())
        self.found: dict[tuple[str, int | None], Finding] = {}
        self.per_code: dict[str, int] = {}
        self.jit_stack: list[str] = []  # the @triton.jit function being walked, if any
        self.good_classes: set[str] = set()
        self.launched: set[str] = set()  # jit kernels launched as k[grid](...)
        self.passed: set[str] = set()  # jit kernels handed to a helper as an argument
        self.indirect = False  # some helper launches a kernel it was handed
        self.edges: dict[str, set[str]] = {}  # jit kernel -> jit functions it calls
        self.used_loads: set[str] = set()
        self.notes: list[str] = []
        self.parent = {id(c): p for p in src.nodes for c in ast.iter_child_nodes(p)}
        # Whose attributes the candidate may set (anything else is an object it did not create:
        # a module, a foreign class, a guard; row 24), which names it binds at all, which hold
        # plain containers, and what sits in annotations (gate_names.py).
        self.own_roots = gate_names.own_roots(src.tree)
        self.known = gate_names.bound_names(src.tree) | gate_names.SAFE_BUILTINS | NAME_BUILTINS
        self.containers = gate_names.containers(src.tree)
        self.annotations = gate_names.annotation_nodes(src.tree)
        self.own_classes = {n.name for n in src.nodes if isinstance(n, ast.ClassDef)}

    def add(self, code: str, where: ast.AST | int | None, message: str) -> None:
        line = where if isinstance(where, int) or where is None else getattr(where, "lineno", None)
        if self.per_code.get(code, 0) >= MAX_PER_CODE and (code, line) not in self.found:
            return  # enough to name the rule; thousands of findings only cost the orchestrator
        if (code, line) not in self.found:
            self.per_code[code] = self.per_code.get(code, 0) + 1
        self.found.setdefault((code, line), Finding(code, message, line))

    def result(self) -> tuple[Finding, ...]:
        return tuple(sorted(self.found.values(), key=lambda f: (f.line or 0, f.code)))

    def _allowed(self, op: str) -> bool:
        return base_op(op) in self.allowed

    def _nn_allowed(self, cls: str) -> bool:  # nn.Conv2d is allowed by "conv2d"
        snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", cls).lower()
        return any(self._allowed(n) for n in (cls.lower(), snake, re.sub(r"\dd$", "", snake)))

    def _compute(self, node: ast.AST, what: str) -> None:
        self.add(reasons.TORCH_COMPUTE, node, f"{what} is a torch compute op; {HINT}")

    # --- names -----------------------------------------------------------------------------------
    def _classify(self, q: str, node: ast.AST, call: bool) -> None:
        """Judge a use of the qualified name ``q`` (``call``: it is being called)."""
        last = q.rsplit(".", 1)[-1]
        for names, code, message in NAME_RULES:
            if under(q, names) or (code == reasons.TENSOR_SUBCLASS and last in SUBCLASS_ATTRS):
                self.add(code, node, message.format(q))
                return
        if why := gate_reach.reach(q):
            self.add(reasons.FORBIDDEN_MODULE, node, why)
            return
        if q.startswith("builtins.") and last in DYNAMIC_BUILTINS:
            self.add(reasons.DYNAMIC_CODE, node, f"{q} runs code the gate cannot read; remove it")
        elif self.jit_stack and q.split(".")[0] == "torch":
            self.add(reasons.TORCH_COMPUTE, node, f"{q} inside a @triton.jit kernel; use tl.*")
        elif not self.jit_stack and self._is_compute(q, call) and not self._allowed(last):
            self._compute(node, q)

    @staticmethod
    def _is_compute(q: str, call: bool) -> bool:
        if under(q, HOST_NAMESPACES):
            return False  # parameter init, autograd.Function wrappers, Inductor's jit helpers
        if under(q, COMPUTE_NAMES) or any(q.startswith(p + ".") for p in COMPUTE_NAMESPACES):
            return True
        parts = q.split(".")
        if parts[0] != "torch" or len(parts) < 2:
            return False
        if any(p.startswith("_") and not is_dunder(p) for p in parts[1:]):
            return True  # private torch API: torch._foreach_*, torch._dynamo, ...
        if len(parts) == 3 and parts[1] == "Tensor":
            return base_op(parts[2]) in COMPUTE_METHODS
        classes = [i for i, p in enumerate(parts) if p[:1].isupper()]
        if parts[1] == "nn" and classes and parts[classes[0]] not in NN_HOLDERS:
            return classes[0] < len(parts) - 1  # nn.Linear.forward(self.linear, x)
        if len(parts) != 2:
            return False
        name = parts[1]
        if base_op(name) in COMPUTE_METHODS:
            return True
        return call and name not in TORCH_HOST_OK and not name[:1].isupper()

    def visit_Name(self, node: ast.Name) -> None:
        n, load = node.id, isinstance(node.ctx, ast.Load)
        if load and n in NAME_BUILTINS and not self._called(node) and n not in self.src.aliases:
            message = f"{n} may only be called directly, never passed, stored or renamed"
            self.add(reasons.DYNAMIC_CODE, node, message)
        if n in SUBCLASS_ATTRS:
            self.add(reasons.TENSOR_SUBCLASS, node, f"{n} intercepts tensor dispatch; remove it")
        elif load and n in self.src.aliases:
            self._classify(self.src.aliases[n], node, call=False)
            self._value_use(node, self.src.aliases[n])
        elif load and n == "memoryview":
            self.add(reasons.HOST_READS_VALUES, node, "memoryview reads memory on the host")
        elif load and n in DYNAMIC_BUILTINS:
            self.add(reasons.DYNAMIC_CODE, node, f"{n} runs code the gate cannot read; remove it")
        elif load and n == "open":
            self.add(reasons.FILE_ACCESS, node, "open() touches files; candidates may not")
        elif is_dunder(n) and n not in ALLOWED_DUNDERS:
            self.add(reasons.INTROSPECTION, node, f"{n} is interpreter internals; remove it")
        elif load and n not in self.known:
            message = (
                f"{n} is never defined in the candidate: a name must come from its imports "
                "and definitions or be a plain builtin"
            )
            self.add(reasons.DYNAMIC_CODE, node, message)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        a = node.attr
        if a in SUBCLASS_ATTRS:
            self.add(reasons.TENSOR_SUBCLASS, node, f".{a} makes tensor subclasses; remove it")
        elif (is_dunder(a) and a not in ALLOWED_DUNDERS) or a in FRAME_ATTRS:
            self.add(reasons.INTROSPECTION, node, f".{a} is interpreter internals; remove it")
        elif a in FILE_ATTRS:
            self.add(reasons.FILE_ACCESS, node, f".{a} touches files; candidates may not")
        elif a in VALUE_READS and not self.jit_stack:
            message = f".{a}() hands tensor values to host code; compute in the kernel instead"
            self.add(reasons.HOST_READS_VALUES, node, message)
        q = self.src.qual(node)
        if (
            gate_names.private(a)
            and gate_names.attr_root(node) not in self.own_roots
            and not gate_names.private_ok(q)
        ):
            message = f".{a} is private to an object the candidate did not create; remove it"
            self.add(reasons.INTROSPECTION, node, message)
        if isinstance(node.ctx, ast.Load) and q is not None:
            self._classify(q, node, call=False)
            self._value_use(node, q)
        elif q is None and a in gate_reach.escape_attrs():
            message = f".{a} reaches the interpreter or the OS (the module {a}); remove it"
            self.add(reasons.FORBIDDEN_MODULE, node, message)
        self.generic_visit(node)

    def _called(self, node: ast.AST) -> bool:
        parent = self.parent.get(id(node))
        return isinstance(parent, ast.Call) and parent.func is node

    def _value_use(self, node: ast.AST, q: str) -> None:
        """A module or a class of a library may be named (``torch.nn``, ``torch.Tensor``) and
        renamed (``tl = triton.language``), but never held as a value: in a container, a
        default, an argument, a return. Held, it can be patched or searched where the gate
        cannot see (rows 23, 24). Classes may also be tested against, derived from, called."""
        parent = self.parent.get(id(node))
        if isinstance(parent, ast.Attribute) and parent.value is node:
            return  # a longer chain: judged whole
        if isinstance(parent, ast.Assign) and parent.value is node:
            if all(isinstance(t, ast.Name) for t in parent.targets):
                return  # an alias the gate follows (SourceModel.aliases)
        _, obj = gate_reach.walk(q)
        if isinstance(obj, types.ModuleType):
            message = f"the module {q} is used as a value; use its members by name ({q}.name)"
            self.add(reasons.FORBIDDEN_MODULE, node, message)
        elif isinstance(obj, type) and not self._class_use_ok(node, parent):
            message = (
                f"the class {q} is used as a value; a library class may be called, tested "
                "(isinstance, is), derived from or named in annotations only"
            )
            self.add(reasons.DYNAMIC_CODE, node, message)

    def _class_use_ok(self, node: ast.AST, parent: ast.AST | None) -> bool:
        if id(node) in self.annotations or self._called(node):
            return True
        while isinstance(parent, ast.Tuple):  # isinstance(x, (A, B)), except (A, B)
            node, parent = parent, self.parent.get(id(parent))
        if isinstance(parent, ast.Call):
            f = parent.func
            return isinstance(f, ast.Name) and f.id in ("isinstance", "issubclass")
        return isinstance(parent, (ast.Compare, ast.ClassDef, ast.ExceptHandler))

    # --- imports ---------------------------------------------------------------------------------
    def _import(self, module: str, full: str, node: ast.AST) -> None:
        if not gate_reach.allowed_module(module):
            message = (
                f"import of {full} is not allowed; candidates import torch, triton, math and a "
                "few pure standard modules (typing, functools, itertools, operator, dataclasses, "
                "enum, collections)"
            )
            self.add(reasons.FORBIDDEN_IMPORT, node, message)
        self._classify(full, node, call=False)

    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            self._import(a.name, a.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        mod = node.module or ""
        for a in node.names:
            if node.level or a.name == "*":
                what = f"from {'.' * node.level}{mod} import {a.name}"
                self.add(reasons.FORBIDDEN_IMPORT, node, f"{what} is not allowed; import by name")
            else:
                self._import(mod, f"{mod}.{a.name}", node)

    # --- definitions -----------------------------------------------------------------------------
    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for kw in node.keywords:
            message = f"class {node.name} uses {kw.arg}=; define a plain nn.Module subclass"
            self.add(reasons.INHERITS_REFERENCE, node, message)
        good = True
        for base in node.bases:
            q = self.src.qual(base) or dotted(base) or ast.unparse(base)
            if q in GOOD_BASES or (q in self.good_classes and q != "Model"):
                continue
            good = False
            if q.endswith("Tensor"):
                message = f"class {node.name} derives from {q}; return plain torch.Tensor outputs"
                self.add(reasons.TENSOR_SUBCLASS, node, message)
            else:
                message = f"class {node.name} derives from {q}; derive from nn.Module only"
                self.add(reasons.INHERITS_REFERENCE, node, message)
        if good:
            self.good_classes.add(node.name)
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        if isinstance(node, ast.AsyncFunctionDef):
            self.add(reasons.THREADS, node, f"async def {node.name} defers work; use a plain def")
        if is_dunder(node.name) and node.name != "__init__":
            code = DUNDER_DEFS.get(node.name, reasons.INTROSPECTION)
            self.add(code, node, f"defining {node.name} is not allowed; only __init__, forward")
        for child in [*node.decorator_list, node.args, node.returns]:
            if child is not None:
                self.visit(child)
        if key := self.src.jit_key.get(id(node)):
            self.jit_stack.append(key)
            self.edges.setdefault(key, set())
        for stmt in node.body:
            self.visit(stmt)
        if key:
            self.jit_stack.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    # --- statements ------------------------------------------------------------------------------
    def visit_Try(self, node: ast.Try) -> None:
        if node.handlers and not gate_names.import_fallback(node):
            message = (
                "try/except can hide a fallback path; remove it and let errors propagate (only "
                "a try whose body and handlers just import, catching ImportError, is allowed)"
            )
            self.add(reasons.EXCEPTION_FALLBACK, node, message)
        self.generic_visit(node)

    visit_TryStar = visit_Try

    def visit_Assign(self, node: ast.Assign | ast.AnnAssign | ast.AugAssign | ast.Delete) -> None:
        targets = getattr(node, "targets", None) or [node.target]
        for t in targets:
            for e in t.elts if isinstance(t, (ast.Tuple, ast.List, ast.Starred)) else [t]:
                if isinstance(e, (ast.Attribute, ast.Subscript)) and root(e) in self.src.aliases:
                    message = f"changing {ast.unparse(e)} patches an imported module; {KEEP}"
                    self.add(reasons.TIMER_PATCH, e, message)
                elif isinstance(e, ast.Attribute) and gate_names.attr_root(e) not in self.own_roots:
                    message = (
                        f"setting {ast.unparse(e)} changes an object the candidate did not "
                        "create; set attributes only on self (or ctx) and on its own classes"
                    )
                    self.add(reasons.TIMER_PATCH, e, message)
        if isinstance(getattr(node, "op", None), ast.MatMult):
            self._matmul(node)
        self.generic_visit(node)

    visit_AnnAssign = visit_AugAssign = visit_Delete = visit_Assign

    def visit_BinOp(self, node: ast.BinOp) -> None:
        if isinstance(node.op, ast.MatMult):
            self._matmul(node)
        self.generic_visit(node)

    def _matmul(self, node: ast.AST) -> None:
        if not self.jit_stack and not self._allowed("@"):
            self._compute(node, "@ (matmul)")

    def visit_Constant(self, node: ast.Constant) -> None:
        """Strings: interpreter internals named in them, `def` lines inside kernels, and native
        source (CUDA C++, compiler flags), which ``gate_native`` reads."""
        s = node.value
        if isinstance(s, str) and is_dunder(s) and s not in ALLOWED_DUNDERS | {"__main__"}:
            message = f"the string {s!r} names interpreter internals; remove it"
            self.add(reasons.INTROSPECTION, node, message)
        if isinstance(s, str) and self.jit_stack and re.search(r"^\s*(async\s+)?def\s", s, re.M):
            # The interpreter finds a kernel's source by its text: a `def` line in a string
            # would make it run code other than the kernel this gate read.
            message = "a string inside a kernel holds a `def` line; remove it from the kernel"
            self.add(reasons.DYNAMIC_CODE, node, message)
        if isinstance(s, str) and gate_native.is_native(s):
            for code, line, message in gate_native.scan(s, node.lineno, self._allowed):
                self.add(code, line, message)

    def _type_test(self, node: ast.Call) -> bool:
        parent = self.parent.get(id(node))
        return isinstance(parent, ast.Compare) or (
            isinstance(parent, ast.Attribute) and parent.attr == "__name__"
        )

    # --- calls -----------------------------------------------------------------------------------
    def visit_Call(self, node: ast.Call) -> None:
        f = node.func
        if self.jit_stack:
            if isinstance(f, ast.Name) and f.id in self.src.jit:
                self.edges[self.jit_stack[-1]].add(f.id)
        else:
            self._launch(node)
            self._method_compute(node)
            self._module_call(node)
            if (q := self.src.qual(f)) is not None:
                self._classify(q, node, call=True)
        if isinstance(f, ast.Name) and f.id not in self.src.aliases:
            self._builtin_call(f.id, node)
        if any(k.arg == "stream" for k in node.keywords):
            self.add(reasons.STREAMS, node, "stream= launches on a side stream; drop the argument")
        self.generic_visit(node)

    def _launch(self, node: ast.Call) -> None:
        f, jit = node.func, set(self.src.jit)
        # k[grid](...), k.run(...); calling a kernel without a grid fails at run time anyway
        self.launched |= self.src.labels(getattr(f, "value", f)) & jit
        self.indirect |= isinstance(f, ast.Subscript) and isinstance(f.value, ast.Name)
        for arg in [*node.args, *(k.value for k in node.keywords)]:
            self.passed |= self.src.labels(arg) & jit
        held = self.src.labels(f) | self.src.labels(getattr(f, "value", None))
        self.used_loads |= held & set(self.src.loads)

    def _method_compute(self, node: ast.Call) -> None:
        f = node.func
        if not isinstance(f, ast.Attribute) or root(f.value) in self.src.modules:
            return  # module functions (math.exp, torch.max) are judged by name in _classify
        if gate_names.is_container(f.value) or (
            isinstance(f.value, ast.Name) and f.value.id in self.containers
        ):
            return  # seen.add(k), sizes.sort(): a plain Python container's method
        if base_op(f.attr) not in COMPUTE_METHODS or self._allowed(f.attr):
            return
        if root(f.value) in ("self", "cls") and f.attr in self.src.defined:
            return  # the candidate's own method
        if not self.src.labels(f.value) & set(self.src.loads):  # else: an extension's function
            self._compute(node, f".{f.attr}()")

    def _module_call(self, node: ast.Call) -> None:
        f = node.func
        if isinstance(f, ast.Attribute) and (f.attr == "forward" or f.attr.startswith("_")):
            f = f.value
        while isinstance(f, ast.Subscript):
            f = f.value
        classes = {lab[3:] for lab in self.src.labels(f) if lab.startswith("nn.")}
        if bad := sorted(c for c in classes if not self._nn_allowed(c)):
            who = f"calling {dotted(f) or 'an nn module'} (nn.{', nn.'.join(bad)})"
            self._compute(node, who)

    def _builtin_call(self, name: str, node: ast.Call) -> None:
        if name == "type" and len(node.args) == 3:
            message = "type() with 3 arguments builds a class; write a class statement"
            self.add(reasons.DYNAMIC_CODE, node, message)
        if name == "type" and len(node.args) == 1 and not self._type_test(node):
            message = "type(x) may only be compared or named (type(x) is T, type(x).__name__)"
            self.add(reasons.DYNAMIC_CODE, node, message)
        if name not in ("getattr", "setattr", "delattr", "hasattr") or len(node.args) < 2:
            return
        obj, attr = node.args[0], literal(node.args[1:2])
        if name in ("setattr", "delattr") and gate_names.attr_root(obj) not in self.own_roots:
            message = f"{name} on {ast.unparse(obj)} changes an object the candidate did not create"
            self.add(reasons.TIMER_PATCH, node, message)
        q = self.src.qual(obj)
        if q is None and attr in gate_reach.escape_attrs():
            message = f"{name}(..., {attr!r}) reaches the module {attr}; remove it"
            self.add(reasons.FORBIDDEN_MODULE, node, message)
        elif q is not None and attr is not None:
            self._classify(f"{q}.{attr}", node, call=False)
        if attr is None:
            self.add(reasons.DYNAMIC_CODE, node, f"{name} with a computed name; use obj.attr")
        elif is_dunder(attr) and attr not in ALLOWED_DUNDERS:
            self.add(reasons.INTROSPECTION, node, f"{name}(..., {attr!r}) is interpreter internals")
        elif name == "getattr" and not self.jit_stack and not self._allowed(attr):
            if base_op(attr) in COMPUTE_METHODS:
                self._compute(node, f"getattr(..., {attr!r})")
        if root(obj) in self.src.aliases:
            what = ast.unparse(obj)
            self.add(reasons.DYNAMIC_CODE, node, f"{name} on module {what}; use {what}.name")
            if name != "getattr":
                message = f"{name}({what}, ...) patches an imported module; {KEEP}"
                self.add(reasons.TIMER_PATCH, node, message)

    # --- launches --------------------------------------------------------------------------------
    def report_unlaunched(self) -> None:
        """A file where nothing is launched is rejected; one that launches something and also
        keeps an unused helper gets a note: the run-time launch counter proves the launch."""
        done = self.launched | (self.passed if self.indirect else set())
        anything = bool(done) or bool(self.used_loads)
        todo = list(done)
        while todo:  # a jit function called from a launched kernel runs too
            for callee in self.edges.get(todo.pop(), ()):
                if callee not in done:
                    done.add(callee)
                    todo.append(callee)
        unused = [
            (f"@triton.jit {name} is never launched or called", fn.lineno)
            for name, fn in self.src.jit.items()
            if name not in done
        ]
        for label, line in self.src.loads.items():
            if label not in self.used_loads:
                what = "load_kernel(...)" if label.startswith(LOAD_KERNEL) else "load_inline(...)"
                unused.append((f"{what} result never used", line))
        for message, line in unused:
            if anything:
                self.notes.append(f"line {line}: {message} (unused code; remove it)")
            else:
                how = (
                    "launch a kernel from forward as kernel[grid](...) or kernel(grid, block, ...)"
                )
                self.add(reasons.KERNEL_NOT_LAUNCHED, line, f"{message}; {how}")
