"""A CPU path as faithful as the Triton interpreter allows.

Trusted shims the candidate worker installs before the candidate loads, and only when Triton runs
interpreted (``TRITON_INTERPRET=1``, a CPU worker). Compiled Triton and its interpreter differ in
ways that reject honest kernels or accept wrong ones; each shim closes one difference:

- kernel arguments (here): a Python float reaches a compiled kernel as an fp32 scalar, the
  interpreter hands the bare float over (``eps.to(tl.float32)`` fails); a bool is an i1 (3.6's
  interpreter cannot wrap one); a ``tl.dtype`` given to a jit helper or a constexpr parameter is a
  ``tl.constexpr`` (``DT.value`` works), the interpreter passes the bare dtype; a builtin imported
  by name (``from triton.language.math import rsqrt``) compiles, and fails interpreted. Ints are
  i32/u32/i64 by value in both; a GPU launch also makes an int equal to 1 a constexpr, which is
  not mirrored here (``feedback/compile_check.py`` compiles each launch as a GPU would);
- ``libdevice.py``: ``triton.language.extra.libdevice`` is a set of stubs the GPU compiler resolves;
  interpreted they return None. They run on numpy here;
- ``autotune.py``: ``triton.autotune`` and ``triton.runtime.driver.active`` need a GPU driver; a CPU
  stand-in runs every config and keeps the first, and each config's output is judged (row 31);
- program order (here): the interpreter runs a grid's programs in one fixed order, so a kernel
  whose programs pass data through global memory (a race on a GPU) looks right; every trial is run
  again with each launch's programs in reverse order (row 30, ``alternates.py``);
- ``coverage.py``: every store is visible, so outputs must hold what kernels stored (row 26).

What this cannot show is said in every CPU verdict (``CPU_LIMITS``). Everything patched is listed
in ``PATCHED`` so the guards can check, after each call, that it is still in place (row 24).
"""

from __future__ import annotations

import contextlib
import os
import types
from collections.abc import Callable, Iterator

from ... import pyast

# Appended to every CPU verdict's notes (sandbox/evaluate.py): what a pass here does not prove.
CPU_LIMITS = (
    "CPU: kernels ran under the Triton interpreter, with each launch's programs in two orders, "
    "every autotune config, and every output byte traced to a kernel store or an allowed torch "
    "op; this does not prove freedom from races within a program or between programs that both "
    "orders miss, GPU memory-model or numerical (libdevice, tensor-core) effects, or GPU-only "
    "code paths"
)


class _State:
    """Set by the worker between calls (trusted code), read by the shims during one."""

    order = "natural"  # or "reversed": the order each launch runs its grid's programs in
    forced_config: int | None = None  # an index into each autotuner's pruned configs


STATE = _State()
# (dotted name, the object installed there): what the guards' tripwire re-checks after a call.
PATCHED: tuple[tuple[str, object], ...] = ()
_LOOKUPS: dict[str, Callable[[], object]] = {}


def interpreted() -> bool:
    return os.environ.get("TRITON_INTERPRET") == "1"


def install() -> tuple[tuple[str, object], ...]:
    """Install every shim (once per process); returns ``PATCHED``."""
    global PATCHED
    if PATCHED:
        return PATCHED
    import triton.language as tl
    from triton.runtime import interpreter as ti

    from . import autotune, coverage, libdevice

    found: list[tuple[str, object]] = []

    def patch(owner, attribute: str, new: object, where: str = "") -> None:
        if not where:
            module = isinstance(owner, types.ModuleType)
            where = owner.__name__ if module else f"{owner.__module__}.{owner.__qualname__}"
        name = f"{where}.{attribute}"
        setattr(owner, attribute, new)
        found.append((name, new))
        _LOOKUPS[name] = lambda: getattr(owner, attribute, None)

    _install_private_globals(ti, patch)
    _install_arguments(ti, tl, patch)
    _install_program_hooks(ti, patch, coverage)
    libdevice.install(ti, patch, _with_semantic)
    autotune.install(STATE, patch)
    PATCHED = tuple(found)
    return PATCHED


def _install_private_globals(ti, patch) -> None:
    """The interpreter runs each rewritten kernel in its module's globals, after copying its own
    globals into them: the candidate's module would then hold numpy, ``inspect`` and the
    raw-memory ``_interpreter`` under names the candidate never imported (an attacker used them
    after its first launch). Run the kernel in a copy instead: same lookups, nothing leaks."""
    own = vars(ti)

    def compile_and_exec(self, transformed_ast):
        code = pyast.compile_tree(transformed_ast, self.filename)
        namespace = {**own, **self.fn.__globals__}
        local = {**self.kwargs}
        exec(code, namespace, local)
        return local[self.fn.__name__]

    patch(ti.FunctionRewriter, "_compile_and_exec", compile_and_exec)


def watched() -> dict[str, object]:
    """What is at each patched name now, for the guards' identity snapshot (threat row 24).
    Not always the object in ``PATCHED``: the guards' launch counter wraps
    ``InterpretedFunction.run`` after ``install``; what they snapshot is what must stay."""
    return {name: lookup() for name, lookup in _LOOKUPS.items()}


def program_order(order: str) -> contextlib.AbstractContextManager[None]:
    """Every interpreted launch inside runs its grid's programs in ``order``."""
    return _state(order=order)


def forced_config(index: int) -> contextlib.AbstractContextManager[None]:
    """Every multi-config autotuner inside takes its ``index``-th pruned config."""
    return _state(forced_config=index)


@contextlib.contextmanager
def _state(**values) -> Iterator[None]:
    """``STATE`` set to ``values`` inside, as it was after."""
    before = {name: getattr(STATE, name) for name in values}
    for name, value in values.items():
        setattr(STATE, name, value)
    try:
        yield
    finally:
        for name, value in before.items():
            setattr(STATE, name, value)


def unsupported_reason(exc: BaseException) -> str | None:
    """Why the interpreter could not run the kernel (inline PTX, an extern function with no CPU
    implementation, ...), or None when ``exc`` is an ordinary failure of the candidate's."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, NotImplementedError) and "interpreter" in str(exc):
            return str(exc)[:500]
        exc = exc.__cause__ or exc.__context__
    return None


# --- kernel arguments ----------------------------------------------------------------------------
def _install_arguments(ti, tl, patch) -> None:
    import numpy as np

    convert = ti._implicit_cvt

    def implicit_cvt(arg):
        # A GPU launch specialises a bool as i1 and a float as fp32 (floats are never constexprs
        # unless annotated so); ints are already i32/i64/u64 by value in the interpreter.
        if isinstance(arg, bool):
            return tl.tensor(ti.TensorHandle(np.array([arg], dtype=np.bool_), tl.int1), tl.int1)
        if isinstance(arg, float):
            with np.errstate(over="ignore"):  # 1e40 is inf in fp32, on a GPU too
                data = np.array([arg], dtype=np.float32)
            return tl.tensor(ti.TensorHandle(data, tl.float32), tl.float32)
        return convert(arg)

    patch(ti, "_implicit_cvt", implicit_cvt)

    def constexpr_dtype(value):
        return tl.constexpr(value) if isinstance(value, tl.dtype) else value

    @contextlib.contextmanager
    def bare_builtins(fn) -> Iterator[None]:
        """The interpreter gives Triton's builtins their semantic only where a kernel reaches
        them as ``tl.x`` or ``tl.math.x``; one imported by name (``from triton.language.math
        import rsqrt``, as Liger does) fails. The compiler takes both: for the launch, such
        names in the kernel's globals call the builtin with the interpreter's semantic."""
        scope = getattr(fn, "__globals__", {})
        swapped = {
            name: value
            for name, value in list(scope.items())
            if tl.core.is_builtin(value) and not getattr(value, "_kernelloop_shim", False)
        }
        for name, builtin in swapped.items():
            scope[name] = _with_semantic(builtin, ti.interpreter_semantic)
        try:
            yield
        finally:
            for name, builtin in swapped.items():
                if getattr(scope.get(name), "_kernelloop_shim", False):
                    scope[name] = builtin

    run = ti.InterpretedFunction.run
    call = ti.InterpretedFunction.__call__

    def launch(self, *args, **kwargs):
        # The compiler wraps a dtype argument in tl.constexpr, the interpreter does not.
        args = tuple(constexpr_dtype(a) for a in args)
        kwargs = {k: constexpr_dtype(v) for k, v in kwargs.items()}
        from . import coverage

        with coverage.launch(args, kwargs), bare_builtins(self.fn):
            return run(self, *args, **kwargs)

    def helper_call(self, *args, **kwargs):
        args = tuple(constexpr_dtype(a) for a in args)
        with bare_builtins(self.fn):
            return call(self, *args, **{k: constexpr_dtype(v) for k, v in kwargs.items()})

    patch(ti.InterpretedFunction, "run", launch)
    patch(ti.InterpretedFunction, "__call__", helper_call)


def _with_semantic(fn, semantic):
    """``fn``, a Triton builtin, callable from interpreted kernel code."""

    def call(*args, **kwargs):
        kwargs.pop("_semantic", None)
        return fn(*args, _semantic=semantic, **kwargs)

    call.__name__ = call.__qualname__ = getattr(fn, "__name__", "builtin")
    call.__doc__ = fn.__doc__
    call._kernelloop_shim = True
    return call


# --- program order and memory traffic ------------------------------------------------------------
def _install_program_hooks(ti, patch, coverage) -> None:
    """Both Tritons (3.6, 3.9) run a grid as ``for x: for y: for z: set_grid_idx(x, y, z); fn()``
    and route every store (plain, masked, block-pointer, descriptor) through
    ``create_masked_store``, every load through ``create_masked_load``, and atomics through
    ``create_atomic_rmw`` / ``create_atomic_cas``: hooking those sees all a kernel does."""
    builder = ti.InterpreterBuilder
    set_grid_idx = builder.set_grid_idx

    def ordered_grid_idx(self, x, y, z):
        if STATE.order == "reversed":  # the whole grid, last program first (row 30)
            nx, ny, nz = self.grid_dim
            x, y, z = nx - 1 - x, ny - 1 - y, nz - 1 - z
        return set_grid_idx(self, x, y, z)

    load, store = builder.create_masked_load, builder.create_masked_store
    rmw, cas = builder.create_atomic_rmw, builder.create_atomic_cas

    def traced_load(self, ptrs, mask, *rest, **kwargs):
        coverage.on_read(ptrs, mask)
        return load(self, ptrs, mask, *rest, **kwargs)

    def traced_store(self, ptrs, value, mask, *rest, **kwargs):
        result = store(self, ptrs, value, mask, *rest, **kwargs)
        coverage.on_write(ptrs, mask)
        return result

    def traced_rmw(self, op, ptr, val, mask, *rest, **kwargs):
        coverage.on_read(ptr, mask)
        result = rmw(self, op, ptr, val, mask, *rest, **kwargs)
        coverage.on_write(ptr, mask)
        return result

    def traced_cas(self, ptr, cmp, val, *rest, **kwargs):
        coverage.on_read(ptr, None)
        result = cas(self, ptr, cmp, val, *rest, **kwargs)
        coverage.on_write(ptr, None)
        return result

    patch(builder, "set_grid_idx", ordered_grid_idx)
    patch(builder, "create_masked_load", traced_load)
    patch(builder, "create_masked_store", traced_store)
    patch(builder, "create_atomic_rmw", traced_rmw)
    patch(builder, "create_atomic_cas", traced_cas)
