"""``load(problem_or_key)``: a module that runs the best library entry for each call's shapes,
and the problem's reference where none fits.

This is how a captured model subgraph (or any problem) reaches its verified kernel at run time;
``kernelloop.patch`` puts one behind each swapped module call. The per-call path is one dict
lookup on (shapes, dtypes, device) after the first call of a key: the decision, the entry's
compiled module and its launch setup are made once per key, because a patched model calls this
on every forward.

Which entries: non-stale ones for this machine's architecture, the call's dtype and the bucket
of its shapes; timed ones only unless ``allow_untimed`` (an untimed entry was verified, never
shown faster, and is labelled so in every decision). Entries are read when the op is loaded;
``refresh()`` reads the library again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..errors import KernelloopError
from . import opkey, store
from .manifest import Manifest, ManifestError


class LoadError(KernelloopError, ValueError):
    """The problem or op key cannot be loaded (unknown key, no reference to fall back to)."""


@dataclasses.dataclass(frozen=True)
class Choice:
    kind: str  # "entry" or "reference"
    fn: Callable[..., Any]
    why: str
    entry_id: str | None = None


class LoadedOp(torch.nn.Module):
    def __init__(
        self,
        problem,
        op_key: str,
        *,
        library=None,
        allow_untimed: bool = False,
        size: str | None = None,
    ):
        super().__init__()
        from .store import Library

        self.op_key = op_key
        self.problem = problem
        self.allow_untimed = allow_untimed
        self._library = library or Library.default()
        # The init arguments (``get_init_inputs``) come from the problem's constants at ``size``
        # (default: as written); the reference and every entry are built with them.
        module = problem.instantiate(problem.overrides_for(size))
        self._init = list(module.get_init_inputs())
        with _seeded():
            self.reference = module.Model(*self._init)
        # The mode the entries were verified in: training unless the problem declares EVAL_MODE.
        self.reference.train(not getattr(module, "EVAL_MODE", False))
        self._signature = _signature(module) if opkey.is_graph_key(op_key) else None
        self._entries: list[Manifest] = []
        self._decisions: dict[tuple, Choice] = {}
        self._compiled: dict[tuple[str, str], Any] = {}
        self.refresh()

    # --- what a caller reads ------------------------------------------------------------------
    @property
    def has_entries(self) -> bool:
        """Any usable entry at all (some shapes may still fall back)."""
        return bool(self._entries)

    @property
    def entries(self) -> list[Manifest]:
        return list(self._entries)

    def refresh(self) -> None:
        """Read the library again (after a promotion in this process)."""
        from .promote import as_strict

        self._entries = [
            m
            for m in self._library.entries(self.op_key)
            if not m.stale
            and (self.allow_untimed or not m.untimed)
            and (not opkey.is_graph_key(self.op_key) or as_strict(m, self.problem))
        ]
        self._decisions.clear()

    def forward(self, *tensors: Any) -> Any:
        key = tuple([(t.shape, t.dtype, t.device, t.is_contiguous()) for t in tensors])
        choice = self._decisions.get(key)
        if choice is None:
            choice = self._decide(key, tensors)
        return choice.fn(*tensors)

    def choose(self, *tensors: Any) -> Choice:
        key = tuple([(t.shape, t.dtype, t.device, t.is_contiguous()) for t in tensors])
        return self._decisions.get(key) or self._decide(key, tensors)

    def explain(self, *tensors: Any) -> str:
        return self.choose(*tensors).why

    # --- one decision per key -------------------------------------------------------------------
    def _decide(self, key: tuple, tensors: tuple) -> Choice:
        from .dispatcher import arch_of

        device = tensors[0].device if tensors else torch.device("cpu")
        arch, (dtype, bucket) = arch_of(device), self._dtype_bucket(tensors)
        fits = [m for m in self._entries if (m.arch, m.dtype, m.bucket) == (arch, dtype, bucket)]
        # Timed entries first (fastest median), untimed ones only where no timed one fits.
        fits.sort(key=lambda m: (m.untimed, m.median_ms if m.median_ms is not None else 1e30))
        wrong = self._wrong_dtypes(tensors, dtype)
        if wrong:
            # The bucket reads one dtype; an entry's kernel also assumes the others it was
            # verified with (int64 indices read from an int32 tensor are garbage).
            why = (
                f"reference: {wrong}, not the dtypes the entries of {self.op_key} were verified on"
            )
            choice = Choice("reference", self._reference_for(device), why)
        elif not fits:
            why = f"reference: no entry of {self.op_key} for {arch}/{dtype}/{bucket}"
            choice = Choice("reference", self._reference_for(device), why)
        elif arch == "cpu" and os.environ.get("TRITON_INTERPRET") != "1":
            why = (
                f"reference: entry {fits[0].entry_id} runs Triton on a CPU only under "
                "TRITON_INTERPRET=1 (set before triton is imported)"
            )
            choice = Choice("reference", self._reference_for(device), why)
        else:
            best = fits[0]
            try:
                fn = self._entry_module(best, device)
            except ManifestError as exc:
                # Never run a kernel.py that is not the verified one; the call still computes.
                why = f"reference: entry {best.entry_id} is not as promoted ({exc})"
                return self._remember(key, Choice("reference", self._reference_for(device), why))
            label = "UNTIMED entry" if best.untimed else "entry"
            why = f"{label} {best.entry_id} ({best.location}, {best.describe()})"
            if not all(t.is_contiguous() for t in tensors):
                # The evaluator verified it on contiguous inputs only: a kernel indexing them
                # flat reads a transposed view's storage in the wrong order. Same values, copied.
                fn = _contiguous(fn)
                why += ", inputs made contiguous"
            choice = Choice("entry", fn, why, best.entry_id)
        return self._remember(key, choice)

    def _remember(self, key: tuple, choice: Choice) -> Choice:
        self._decisions[key] = choice
        if _log_enabled():
            print(f"[kernelloop dispatch] {self.op_key}: {choice.why}", file=sys.stderr)
        return choice

    def _wrong_dtypes(self, tensors: tuple, dtype: str) -> str | None:
        """What in the call's dtypes differs from the verified inputs' (floating ones cast to
        the entry's dtype, others as the problem draws them), or None."""
        if self._signature is None:
            return None
        got = [str(t.dtype).removeprefix("torch.") for t in tensors]
        want = [dtype if w == "float" else w for w in self._signature]
        if got != want:
            return f"input dtypes {', '.join(got)}"
        return None

    def _dtype_bucket(self, tensors: tuple) -> tuple[str, str]:
        if opkey.is_graph_key(self.op_key):
            return opkey.tensors_dtype(tensors), opkey.bucket(tensors)
        from . import ops  # an efficiency module's op buckets its calls its own way

        spec = ops.get(self.op_key)
        return spec.dtype_of(tensors), spec.bucket(tensors, spec.config_from_init(self._init))

    def _reference_for(self, device: torch.device):
        if self.reference_device() != device:
            self.reference.to(device)
        return self.reference

    def reference_device(self) -> torch.device:
        for t in self.reference.parameters():
            return t.device
        return torch.device("cpu")  # no parameters: a functional problem runs anywhere

    def _entry_module(self, manifest: Manifest, device: torch.device):
        key = (manifest.entry_id, str(device))
        if key not in self._compiled:
            # A verified kernel from the library: imported into the user's process on purpose,
            # exactly as a hand-written extension would be. It passed the evaluator to get here.
            name = f"kernelloop_entry_{manifest.entry_id.replace('-', '_').replace('.', '_')}"
            module = types.ModuleType(name)
            module.__file__ = str(manifest.source_path)
            sys.modules[name] = module  # Triton reads kernel sources through the module
            source = store.read_source(manifest)  # the source its id names, or ManifestError
            exec(compile(source, str(manifest.source_path), "exec"), module.__dict__)
            with _seeded():  # as the evaluator builds it: see _seeded
                instance = module.ModelNew(*self._init)
            if isinstance(instance, torch.nn.Module):
                # The reference's parameter values, as the evaluator gave them when verifying.
                instance.load_state_dict(self.reference.state_dict(), strict=False)
                instance.train(self.reference.training)
                instance = instance.to(device)
            self._compiled[key] = instance
        return self._compiled[key]

    def extra_repr(self) -> str:
        tier = ", untimed allowed" if self.allow_untimed else ""
        return f"op_key={self.op_key!r}, entries={len(self._entries)}{tier}"


def _signature(module) -> tuple[str, ...] | None:
    """Per input of the problem: "float" (the evaluator casts those to the problem's dtype) or
    its dtype, as ``get_inputs`` draws it on the meta device; None when it cannot run there."""
    try:
        with torch.device("meta"):
            inputs = list(module.get_inputs())
    except Exception:  # promotion reads the same shapes on meta: such a problem has no entry
        return None
    return tuple(
        "float" if t.is_floating_point() else str(t.dtype).removeprefix("torch.")
        for t in inputs
        if isinstance(t, torch.Tensor)
    )


_INIT_SEED = 0


@contextlib.contextmanager
def _seeded():
    """Build the reference and each entry under one seed, as the evaluator builds both under
    its ``init_seed``: a ``ModelNew`` whose parameters have other names than the reference's
    (``self.fc`` for ``self.linear``) was verified on the values that seed drew, which
    ``load_state_dict(strict=False)`` cannot give it. The caller's random state is kept."""
    with torch.random.fork_rng(devices=[]):  # parameters are drawn on the CPU, then moved
        torch.default_generator.manual_seed(_INIT_SEED)
        yield


def _contiguous(fn: Callable[..., Any]) -> Callable[..., Any]:
    def call(*tensors: Any) -> Any:
        return fn(*[t.contiguous() for t in tensors])

    return call


def load(
    problem_or_key: Any, *, allow_untimed: bool = False, library=None, size: str | None = None
) -> LoadedOp:
    """A :class:`LoadedOp` for a problem (a ``Problem``, a file path, a bundled id) or for an
    op key whose entries name their problem file; ``size`` picks the problem's size profile
    for its constructor arguments."""
    problem = _problem(problem_or_key, library)
    from .promote import NotPromotable, op_for

    try:
        key = op_for(problem)
    except NotPromotable as exc:
        raise LoadError(str(exc)) from None
    return LoadedOp(problem, key, library=library, allow_untimed=allow_untimed, size=size)


def _problem(spec: Any, library):
    from ..kernelbench import loader
    from ..kernelbench.problem import Problem, ProblemError, load_file

    if isinstance(spec, Problem):
        return spec
    text = str(spec)
    try:
        if isinstance(spec, Path) or text.endswith(".py"):
            return load_file(text)
        if opkey.is_graph_key(text):
            return _problem_of_key(text, library)
        return loader.load_one(text)
    except ProblemError as exc:
        raise LoadError(f"cannot load {text}: {exc}") from None


def _problem_of_key(key: str, library):
    """The reference of a graph op key: the problem file one of its entries was promoted from."""
    from ..kernelbench.problem import load_file
    from .store import Library

    entries = (library or Library.default()).entries(key)
    if not entries:
        raise LoadError(f"no library entry has the op key {key}")
    for m in entries:
        path = m.provenance.problem_path
        if path and Path(path).is_file():
            return load_file(path, problem_id=m.provenance.problem_id)
    raise LoadError(
        f"the entries of {key} name no problem file that still exists, so there is no "
        "reference to fall back to: load the problem file instead"
    )


def _log_enabled() -> bool:
    from .. import settings

    return settings.get().dispatch_log
