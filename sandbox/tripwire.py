"""A tripwire on the evaluator's own code inside the candidate's process (threat row 24).

The candidate shares its worker's process, so it can reach the guards (through ``sys.modules``,
``gc``, a frame) and switch them off: replace ``OpRecorder.note`` so ``torch.relu`` goes
unrecorded, the launch counter, the thread-start counter, the channel writer, or swap a
function's ``__code__`` in place so its identity stays the same. The static gate forbids those
routes; this is the tripwire behind it. :meth:`Tripwire.watch` records, once the guards are in
place and before the candidate loads, where each watched function is found and what it is made
of (its code object, its defaults, the functions and modules its closure holds, what it wraps);
after each call :meth:`Tripwire.changed` names every entry that differs, and the verdict says
GUARD_TAMPERED.

What it cannot see, by design: a patch undone before the call returns leaves nothing to find,
and data the guards keep (counters, lists) is not code. The static gate and the process
boundary are the wall; in-process guards are a tripwire.

Other trusted code the worker installs (the interpreter shims, say) joins with ``watch(name,
obj)`` for each function it installed, or :meth:`Tripwire.watch_code_of` for a whole module.
"""

from __future__ import annotations

import inspect
import sys
import types
from collections.abc import Callable

_Lookup = Callable[[], object]
_MISSING = object()


class Tripwire:
    def __init__(self) -> None:
        # name -> (the object, where it is looked up now or None, its parts when watched)
        self._entries: dict[str, tuple[object, _Lookup | None, tuple]] = {}

    def watch(self, name: str, obj: object, lookup: _Lookup | None = None) -> None:
        """Re-check ``obj`` after each call: its parts must be the same objects, and
        ``lookup()`` (by default the dotted ``name``, where that finds ``obj`` now) must still
        return it. Functions, methods as a class holds them, properties; not bound methods."""
        if lookup is None and _resolve(name) is obj:
            lookup = lambda: _resolve(name)  # noqa: E731
        self._entries[name] = (obj, lookup, _parts(obj))

    def watch_attribute(self, owner: object, attribute: str, name: str = "") -> None:
        """Watch what ``owner`` (a module or class) holds under ``attribute``, in its own dict:
        setting the attribute on the owner replaces the entry there."""
        name = name or f"{_name_of(owner)}.{attribute}"
        self.watch(name, vars(owner)[attribute], lambda: vars(owner).get(attribute, _MISSING))

    def watch_code_of(self, owner: type | types.ModuleType) -> None:
        """Every function a module defines, and every method of the classes it defines (or of
        ``owner`` itself, a class)."""
        if isinstance(owner, type):
            for attribute, value in list(vars(owner).items()):
                if _is_code(value):
                    self.watch_attribute(owner, attribute)
            return
        for attribute, value in list(vars(owner).items()):
            if getattr(value, "__module__", None) != owner.__name__:
                continue  # imported from elsewhere
            if inspect.isfunction(value):
                self.watch_attribute(owner, attribute)
            elif isinstance(value, type):
                self.watch_code_of(value)

    def changed(self) -> list[str]:
        """Names of the watched entries that are not what they were."""
        found = []
        for name, (obj, lookup, parts) in self._entries.items():
            try:
                moved = lookup is not None and lookup() is not obj
                now = _parts(obj)
            except Exception:  # a lookup or attribute the candidate broke: changed too
                moved, now = True, ()
            same = len(now) == len(parts) and all(a is b for a, b in zip(now, parts, strict=True))
            if moved or not same:
                found.append(name)
        return found

    def __len__(self) -> int:
        return len(self._entries)


def _is_code(value: object) -> bool:
    return inspect.isfunction(value) or isinstance(value, staticmethod | classmethod | property)


def _parts(obj: object) -> tuple:
    """What ``obj`` is made of, as objects to compare by identity."""
    if isinstance(obj, staticmethod | classmethod):
        return (obj, *_parts(obj.__func__))
    if isinstance(obj, property):
        return (obj, *_parts(obj.fget), *_parts(obj.fset), *_parts(obj.fdel))
    code = getattr(obj, "__code__", None)
    if not isinstance(code, types.CodeType):
        return (obj,)  # a builtin or a non-function: its identity is all there is
    parts: list = [obj, code, *(obj.__defaults__ or ())]
    for key, value in sorted((obj.__kwdefaults__ or {}).items()):
        parts += [key, value]
    for cell in obj.__closure__ or ():
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        # Functions and modules a closure holds are code; other values (counters) may change.
        if inspect.isfunction(value) or inspect.isbuiltin(value) or inspect.ismodule(value):
            parts.append(value)
    wrapped = vars(obj).get("__wrapped__")  # functools.wraps: contextmanager, lru_cache
    if wrapped is not None:
        parts += _parts(wrapped)
    return tuple(parts)


def _name_of(owner: object) -> str:
    if isinstance(owner, types.ModuleType):
        return owner.__name__
    return f"{getattr(owner, '__module__', '?')}.{getattr(owner, '__qualname__', '?')}"


def _resolve(dotted: str) -> object:
    """The object a dotted name leads to from the modules loaded now, or ``_MISSING``."""
    parts = dotted.split(".")
    for i in range(len(parts) - 1, 0, -1):
        module = sys.modules.get(".".join(parts[:i]))
        if module is None:
            continue
        obj: object = module
        for attribute in parts[i:]:
            # The owner's own dict first: a class attribute set on the class replaces it there.
            space = vars(obj) if hasattr(obj, "__dict__") else {}
            obj = space.get(attribute, _MISSING)
            if obj is _MISSING:
                return _MISSING
        return obj
    return _MISSING
