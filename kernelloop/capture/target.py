"""The user's model and inputs, from ``FILE:FACTORY`` and ``FILE:FN`` arguments.

``FILE:FACTORY`` names a Python file and a function in it that takes no argument and returns the
``nn.Module`` to capture; the inputs come from ``--inputs FILE:FN`` (a function returning the
positional arguments of one forward), else from ``get_inputs`` or ``example_inputs`` in the
factory's file. The file is imported from its path (its folder on ``sys.path`` while it loads,
so it can import its neighbours) under its own stem, so a module type reads
``tiny_llama.Attention`` in reports and in ``capture.json``.

``kernelloop apply`` builds the same model again through :func:`load_factory` and
:func:`load_inputs`; both raise :class:`TargetError` with the fix for every bad argument.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import TargetError

INPUT_FUNCTIONS = ("get_inputs", "example_inputs")  # looked up in the factory's file, in order
SCALARS = (int, float, bool, str, type(None))  # non-tensor inputs a forward may take as constants


def parse_spec(spec: str, what: str = "FILE:FACTORY") -> tuple[Path, str]:
    """``path/to/file.py:name`` -> (path, name); the last colon splits, so ``C:\\x.py:f`` works."""
    path, sep, name = str(spec).rpartition(":")
    if not sep or not path or not name.isidentifier():
        raise TargetError(
            f"{spec!r} is not {what}: write the Python file and the function in it, "
            "e.g. examples/models/tiny_llama.py:make_block"
        )
    file = Path(path)
    if not file.is_file():
        raise TargetError(f"{spec!r}: no such file {file}")
    if file.suffix != ".py":
        raise TargetError(f"{spec!r}: {file} is not a Python file (.py)")
    return file, name


def import_file(path: Path) -> types.ModuleType:
    """Execute ``path`` as a module named after its stem (or the stem and a hash of the path
    when another module already holds that name), registered in ``sys.modules`` so that
    dataclasses, pickling and ``inspect`` work inside it."""
    path = path.resolve()
    name = path.stem if path.stem.isidentifier() else "user_model"
    if not _free(name, path):
        name = f"{name}_{hashlib.sha256(str(path).encode()).hexdigest()[:8]}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise TargetError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    folder = str(path.parent)
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise TargetError(
            f"importing {path} failed: {type(exc).__name__}: {exc}"
            " (fix the file, or run it with python to see the traceback)"
        ) from exc
    finally:
        if added:
            sys.path.remove(folder)
    return module


def _free(name: str, path: Path) -> bool:
    """Whether ``name`` may hold ``path``: it is this file's already, or no other module (one
    loaded, or one importable such as ``json``) answers to it, so nothing gets shadowed."""
    held = sys.modules.get(name)
    if held is not None:
        return Path(getattr(held, "__file__", "") or "").resolve() == path
    try:
        found = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        found = None
    return found is None or (found.origin is not None and Path(found.origin).resolve() == path)


def _function(module: types.ModuleType, name: str, spec: str) -> Callable:
    fn = getattr(module, name, None)
    if fn is None:
        found = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))
        raise TargetError(
            f"{spec}: {Path(module.__file__ or '').name} has no {name!r}; "
            f"its callables are: {', '.join(found) or '(none)'}"
        )
    if not callable(fn):
        raise TargetError(f"{spec}: {name!r} is a {type(fn).__name__}, not a function")
    return fn


def load_factory(spec: str) -> Callable[[], Any]:
    """A function that builds the model of ``FILE:FACTORY`` (call it under ``torch.device``
    to choose where its parameters live) and checks that it is an ``nn.Module``."""
    path, name = parse_spec(spec)
    factory = _function(import_file(path), name, spec)

    def build():
        import torch

        try:
            model = factory()
        except TypeError as exc:
            raise TargetError(
                f"{spec}: calling {name}() failed ({exc}); the factory takes no arguments: "
                "wrap it, e.g. def make(): return MyModel(dim=512)"
            ) from exc
        if not isinstance(model, torch.nn.Module):
            raise TargetError(
                f"{spec}: {name}() returned a {type(model).__name__}, not a torch.nn.Module"
            )
        return model

    return build


def load_inputs(inputs: str | None, model_spec: str) -> list[Any]:
    """The positional arguments of one forward: ``inputs`` (``FILE:FN``), else the factory
    file's ``get_inputs`` / ``example_inputs``. A single tensor counts as one argument."""
    import torch

    if inputs:
        path, name = parse_spec(inputs, "FILE:FN")
        fn = _function(import_file(path), name, inputs)
        origin = inputs
    else:
        path, _ = parse_spec(model_spec)
        module = sys.modules.get(path.stem)
        if (
            module is None
            or Path(getattr(module, "__file__", "") or "").resolve() != path.resolve()
        ):
            module = import_file(path)
        found = [n for n in INPUT_FUNCTIONS if callable(getattr(module, n, None))]
        if not found:
            raise TargetError(
                f"{path} defines neither {' nor '.join(INPUT_FUNCTIONS)}: add one that returns "
                "the forward's arguments (a list of tensors), or pass --inputs FILE:FN"
            )
        fn, origin = getattr(module, found[0]), f"{path}:{found[0]}"
    value = fn()
    if isinstance(value, torch.Tensor):
        value = [value]
    if not isinstance(value, list | tuple):
        raise TargetError(
            f"{origin} returned a {type(value).__name__}; return a list or tuple of the "
            "forward's positional arguments (tensors)"
        )
    for i, item in enumerate(value):
        if not isinstance(item, (torch.Tensor, *SCALARS)):
            raise TargetError(
                f"{origin}: argument {i} is a {type(item).__name__}; inputs are tensors "
                "(or plain numbers, booleans, strings, None)"
            )
    if not any(isinstance(item, torch.Tensor) for item in value):
        raise TargetError(f"{origin} returned no tensor: the forward needs at least one")
    return list(value)
