"""``kernelloop.patch(model, capture)``: hand each captured module call to its library kernel.

``kernelloop capture`` wrote one problem file per fusible module call and a ``capture.json``
saying where each sits in the model (``capture/manifest.py``). For every site whose problem has
a usable library entry, :func:`patch` sets an instance attribute ``forward`` on that submodule:
the model object, the module object, its other methods, its parameters and its state dict stay
as they were, and :func:`unpatch` deletes the attribute again (or puts back a ``forward`` the
user had set on the instance). Sites without an entry are left alone, and the report says why.

The patched ``forward`` hands the call to ``library.load(problem)`` (a ``LoadedOp``: the best
entry for the call's shapes, else the problem's reference) only when the call is the one that
was captured: the same number of positional arguments and the same keywords, tensors where
the capture saw tensors, the captured values everywhere else, and no autograd (the entries
have no backward: under ``torch.is_grad_enabled()`` a call whose inputs or used state require
grad runs the original ``forward``), outside autocast, and in eval mode (the module and every
module inside it) where training mode changes its graph, as the capture traced it. Anything
else runs the original ``forward``, so patching never changes what a call computes, only
which code computes it. A site is swapped only when its module, traced again at patch time,
computes its problem file's forward (``capture/same.py``); a module changed after patching
(an attribute, a submodule) is not seen again: ``unpatch`` and ``patch`` after such a change.

Under ``torch.compile`` the call goes through a custom op ``torch.ops.kernelloop.<op key>``
(fake kernel: the reference on fake tensors), so Dynamo sees one opaque node instead of tracing
into a Triton launch. Eager calls skip it: the custom op's dispatcher machinery costs about
20 us a call on the CI machine, more than the Python around the kernel is allowed to.

Patching is idempotent per module: a module kernelloop already patched is reported as left, so
``patch`` twice with one capture changes nothing; ``unpatch`` first to patch it again (after a
promotion, say). Unpatch before ``copy.deepcopy`` or pickling the model: the patched forward is
a closure over this module, and a copy would keep calling into the original.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from . import library
from .capture import same
from .capture.manifest import Capture, Subgraph
from .errors import KernelloopError

SCHEMA_VERSION = 1
SWAPPED = "swapped"
_ALREADY = "left: already patched (kernelloop.unpatch(model) first to patch it again)"
_MARK = "_kernelloop_patch"  # instance attribute on a patched module: its _Patch record
_OPS: dict[str, Any] = {}  # custom op name -> the op (registered once per process)
_IMPLS: dict[str, Any] = {}  # custom op name -> the LoadedOp its kernel runs (latest patch)


class PatchError(KernelloopError, ValueError):
    """``patch`` cannot start: the model is not an ``nn.Module`` or the capture is unreadable."""


@dataclasses.dataclass(frozen=True)
class SiteResult:
    module: str  # qualified name in the model ("" for the model itself)
    module_type: str  # as the capture saw it
    problem: str  # the problem id (the problem file's stem)
    op_key: str | None  # None where the problem could not be loaded
    status: str  # "swapped" or "left: <why>"
    entries: int = 0  # usable library entries of the op (any shape)

    @property
    def swapped(self) -> bool:
        return self.status == SWAPPED


@dataclasses.dataclass(frozen=True)
class PatchReport:
    """What :func:`patch` did, one row per captured site; ``str()`` is the text, ``to_json`` the
    record."""

    capture: str  # the capture.json read
    allow_untimed: bool
    sites: tuple[SiteResult, ...]
    schema_version: int = SCHEMA_VERSION

    @property
    def swapped(self) -> int:
        return sum(s.swapped for s in self.sites)

    def __str__(self) -> str:
        lines = []
        for s in self.sites:
            name = s.module or "(the model)"
            key = s.op_key or s.problem
            if s.swapped:
                plural = "y" if s.entries == 1 else "ies"
                lines.append(f"  swapped  {name}: {key} ({s.entries} library entr{plural})")
            else:
                lines.append(f"  left     {name}: {s.status.removeprefix('left: ')}")
        total = f"{self.swapped} of {len(self.sites)} captured module calls swapped"
        if not self.swapped and not any(s.status == _ALREADY for s in self.sites):
            total += "; the model is unchanged"
        tier = " (untimed entries allowed)" if self.allow_untimed else ""
        return "\n".join([f"kernelloop patch: {total}{tier}", *lines])

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["sites"] = [dataclasses.asdict(s) for s in self.sites]
        out["swapped"] = self.swapped
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1) + "\n"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PatchReport:
        return cls(
            capture=d["capture"],
            allow_untimed=bool(d["allow_untimed"]),
            sites=tuple(SiteResult(**s) for s in d["sites"]),
            schema_version=int(d.get("schema_version", SCHEMA_VERSION)),
        )


@dataclasses.dataclass
class _Route:
    """How one captured call becomes the LoadedOp's tensors; everything read per call is here,
    built once at patch time."""

    op_key: str
    nargs: int
    constants: tuple[tuple[int, Any], ...]  # (position, captured value with lists as tuples)
    arg_positions: tuple[int, ...]  # positions that must hold tensors
    nkwargs: int  # how many keywords the captured call passed (those below, no others)
    keyword_constants: tuple[tuple[str, Any], ...]  # (keyword, value with lists as tuples)
    keyword_tensors: tuple[str, ...]  # keywords that must hold tensors
    # Per problem input, in order: (None, position) for a positional argument, (_KWARGS,
    # keyword) for a keyword one, (the owner's _parameters or _buffers dict, name) for state,
    # read per call so a reassigned parameter is seen.
    sources: tuple[tuple[Any, Any], ...]
    run: Callable[..., Any]  # LoadedOp.forward (its __call__'s hook machinery adds ~1 us)
    op: Any  # the custom op, for torch.compile
    returns_tuple: bool
    nones: tuple[int, ...]  # positions of the returned tuple that hold None (not the op's)
    single: bool  # the custom op returns one tensor (else a list)
    # The module and the modules inside it, where training mode changes the call's graph (any
    # of them training: not the captured call); empty where it does not.
    modes: tuple[torch.nn.Module, ...] = ()
    shapes: Any = None  # capture.guards.Shapes: where the traced path holds; None: anywhere

    def tensors(self, args: tuple, kwargs: dict) -> list | None:
        """The problem's inputs for this call, or None when it is not the captured call."""
        if len(args) != self.nargs or len(kwargs) != self.nkwargs:
            return None
        for i, value in self.constants:
            a = args[i]
            if a is not value and (isinstance(a, torch.Tensor) or _tuples(a) != value):
                return None
        for i in self.arg_positions:
            if not isinstance(args[i], torch.Tensor):
                return None
        if not kwargs:  # the common call, kept as short as before keywords were captured
            tensors = [args[k] if d is None else d[k] for d, k in self.sources]
        else:
            # With the count equal, every captured keyword present means no other one is.
            for k, value in self.keyword_constants:
                a = kwargs.get(k, _NONE)
                if a is not value and (isinstance(a, torch.Tensor) or _tuples(a) != value):
                    return None
            for k in self.keyword_tensors:
                if not isinstance(kwargs.get(k), torch.Tensor):
                    return None
            tensors = [
                args[k] if d is None else kwargs[k] if d is _KWARGS else d[k]
                for d, k in self.sources
            ]
        if self.shapes is not None and not self.shapes.holds(tensors):
            return None  # the module's forward takes another path at these shapes
        if torch.is_grad_enabled():
            for t in tensors:
                if t.requires_grad:
                    return None  # the entries have no backward: autograd needs the original
        return tensors


@dataclasses.dataclass
class _Patch:
    previous: Any  # the instance ``forward`` the user had set, or _NONE
    routes: list[_Route]


_NONE = object()
_KWARGS = object()  # a _Route source read from the call's keyword arguments


def patch(
    model: torch.nn.Module, capture: str | Path = "capture.json", *, allow_untimed: bool = False
) -> PatchReport:
    """Swap every captured module call that has a library entry; return a :class:`PatchReport`.

    ``capture`` is a ``capture.json`` or the folder holding it (the problem files it names are
    read from the same folder). ``allow_untimed`` also uses entries verified on a CPU but never
    timed (not shown to be faster; for checking the path end to end).
    """
    if not isinstance(model, torch.nn.Module):
        raise PatchError(f"patch takes a torch.nn.Module, not a {type(model).__name__}")
    path = Path(capture)
    try:
        found = Capture.load(path)
    except KernelloopError as exc:
        raise PatchError(str(exc)) from None
    folder = path if path.is_dir() else path.parent
    results: list[SiteResult] = []
    for sub in found.subgraphs:
        loaded, key, why = _load(folder, sub, allow_untimed)
        entries = len(loaded.entries) if loaded is not None else 0
        for site in sub.sites:
            status = why or _swap(model, site.module, site.module_type, sub, loaded)
            row = SiteResult(site.module, site.module_type, sub.problem_id, key, status, entries)
            results.append(row)
    where = str(path / "capture.json" if path.is_dir() else path)
    return PatchReport(where, allow_untimed, tuple(results))


def unpatch(model: torch.nn.Module) -> int:
    """Undo :func:`patch` on every module of ``model``; the number of modules restored."""
    restored = 0
    for module in model.modules():
        record = module.__dict__.pop(_MARK, None)
        if record is None:
            continue
        if record.previous is _NONE:
            module.__dict__.pop("forward", None)
        else:
            module.__dict__["forward"] = record.previous
        restored += 1
    return restored


def is_patched(module: torch.nn.Module) -> bool:
    return _MARK in module.__dict__


# --- patch time ------------------------------------------------------------------------------


def _load(folder: Path, sub: Subgraph, allow_untimed: bool):
    """(LoadedOp or None, op key or None, why the subgraph's sites are left, or None)."""
    problem_file = folder / sub.file
    if not problem_file.is_file():
        return None, None, f"left: the problem file {problem_file} is missing"
    try:
        loaded = library.load(problem_file, allow_untimed=allow_untimed)
    except KernelloopError as exc:
        return None, None, f"left: {exc}"
    if not loaded.has_entries:
        tier = "" if allow_untimed else " (timed; --allow-untimed also takes CPU-verified ones)"
        return loaded, loaded.op_key, f"left: no library entry for {loaded.op_key}{tier}"
    return loaded, loaded.op_key, None


def _swap(model, name: str, module_type: str, sub: Subgraph, loaded) -> str:
    try:
        module = model.get_submodule(name)
    except AttributeError:
        return f"left: the model has no submodule {name!r} (was the capture made from it?)"
    seen = module_type.rpartition(".")[2]
    if type(module).__name__ != seen:
        return f"left: {name or 'the model'} is a {type(module).__name__}, the capture saw {seen}"
    record = module.__dict__.get(_MARK)
    if record is not None and any(r.op_key == loaded.op_key for r in record.routes):
        return _ALREADY
    try:
        route = _route(module, sub, loaded)
    except _Unroutable as exc:
        return f"left: {exc}"
    # The module object proves nothing about what it computes: another eps or flag, an edited
    # forward or problem file would route its calls to kernels verified for something else.
    found = same.check(module, sub, loaded.problem.source)
    if found.why is not None:
        return f"left: {found.why}"
    route.modes = tuple(module.modules()) if found.training_matters else ()
    route.shapes = found.shapes
    if record is None:
        previous = module.__dict__.get("forward", _NONE)
        record = _Patch(previous, [route])
        module.__dict__[_MARK] = record
        module.__dict__["forward"] = _patched_forward(module.forward, record.routes)
    else:  # another subgraph of the same module (a call at other constants): one more route
        record.routes.append(route)
    return SWAPPED


class _Unroutable(Exception):
    pass


def _route(module: torch.nn.Module, sub: Subgraph, loaded) -> _Route:
    sources: list[tuple[Any, Any]] = []
    positions: list[int] = []
    for inp in sub.inputs:
        if inp.kind == "arg" and inp.index is None:
            if inp.target not in sub.keyword_tensors:
                raise _Unroutable(f"input {inp.name!r} has no argument position or keyword")
            sources.append((_KWARGS, inp.target))
            continue
        if inp.kind == "arg":
            sources.append((None, inp.index))
            positions.append(inp.index)
            continue
        owner_name, _, attr = (inp.target or "").rpartition(".")
        try:
            owner = module.get_submodule(owner_name)
        except AttributeError:
            owner = None
        table = None
        if owner is not None:
            table = owner._parameters if inp.kind == "param" else owner._buffers
        if table is None or table.get(attr) is None:
            raise _Unroutable(f"the module has no {inp.kind} {inp.target!r}")
        sources.append((table, attr))
    constants = tuple(sorted((int(k), _tuples(v)) for k, v in sub.constants.items()))
    # A tensor argument the problem never reads still counts and must still be a tensor.
    positions += [i for i in sub.unread_args if i not in positions]
    nargs = 1 + max([*positions, *(i for i, _ in constants)], default=-1)
    return _Route(
        op_key=loaded.op_key,
        nargs=nargs,
        constants=constants,
        arg_positions=tuple(positions),
        nkwargs=len(sub.keyword_constants) + len(sub.keyword_tensors),
        keyword_constants=tuple((k, _tuples(v)) for k, v in sub.keyword_constants.items()),
        keyword_tensors=sub.keyword_tensors,
        sources=tuple(sources),
        run=loaded.forward,
        op=_custom_op(loaded, len(sub.outputs)),
        returns_tuple=sub.returns_tuple,
        nones=sub.none_outputs,
        single=len(sub.outputs) == 1,
    )


def _tuples(value: Any) -> Any:
    """JSON made the capture's tuples lists: compare both sides with lists as tuples."""
    if isinstance(value, list | tuple):
        return tuple(_tuples(v) for v in value)
    return value


# --- call time -------------------------------------------------------------------------------


def _patched_forward(original: Callable[..., Any], routes: list[_Route]) -> Callable[..., Any]:
    is_compiling = torch.compiler.is_compiling
    autocast = torch._C._is_any_autocast_enabled

    def forward(*args: Any, **kwargs: Any) -> Any:
        # The problems were traced without autocast, which computes in another dtype.
        if autocast():
            return original(*args, **kwargs)
        for route in routes:
            # ... and in eval mode: where training mode changes the graph (dropout, batch norm),
            # the module or any module inside it training runs the module's own forward.
            if route.modes and any(m.training for m in route.modes):
                continue
            tensors = route.tensors(args, kwargs)
            if tensors is None:
                continue
            if is_compiling():
                out = route.op(tensors)
                if not route.returns_tuple:
                    return out
                out = (out,) if route.single else tuple(out)
                return _with_nones(out, route.nones) if route.nones else out
            out = route.run(*tensors)
            if route.returns_tuple:
                out = tuple(out) if isinstance(out, list | tuple) else (out,)
                return _with_nones(out, route.nones) if route.nones else out
            return out[0] if isinstance(out, list | tuple) and route.single else out
        return original(*args, **kwargs)

    forward.__kernelloop_patched__ = True  # type: ignore[attr-defined]
    return forward


def _with_nones(out: tuple, nones: tuple[int, ...]) -> tuple:
    """The module's tuple: the op's tensors with None back where the module returned None."""
    it = iter(out)
    return tuple(None if i in nones else next(it) for i in range(len(out) + len(nones)))


def _custom_op(loaded, n_outputs: int):
    """``torch.ops.kernelloop.<op key>``, registered once per op key and tier per process; its
    kernel runs the op key's latest LoadedOp."""
    name = re.sub(r"\W+", "_", loaded.op_key).strip("_")
    if loaded.allow_untimed:
        name += "__untimed"
    _IMPLS[name] = loaded
    if name in _OPS:
        return _OPS[name]
    single = n_outputs == 1
    schema = "(Tensor[] tensors) -> " + ("Tensor" if single else "Tensor[]")

    def kernel(tensors):
        return _shape_out(_IMPLS[name](*tensors), single)

    def fake(tensors):
        # The reference on fake tensors gives the outputs' shapes, dtypes and strides.
        return _shape_out(_IMPLS[name].reference(*tensors), single)

    op = torch.library.custom_op(f"kernelloop::{name}", mutates_args=(), schema=schema)(kernel)
    op.register_fake(fake)
    _OPS[name] = op
    return op


def _shape_out(out: Any, single: bool) -> Any:
    if single:
        return out[0] if isinstance(out, list | tuple) else out
    return list(out)
