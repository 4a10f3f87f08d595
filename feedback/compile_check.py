"""Compile, for a GPU target and without a GPU, every Triton kernel a CPU run launched.

CPU CI runs Triton kernels under the interpreter (``TRITON_INTERPRET=1``), which never runs
Triton's compiler: a kernel can pass every CPU test and not compile for the GPU (an int8
``tl.dot`` without ``out_dtype=tl.int32`` did). Triton ships ptxas, so a CPU can compile for sm_90.
:func:`record_launches` notes each interpreted launch with what a GPU compile is keyed on
(argument types, constexprs, warps, stages); :func:`compile_all` compiles each one with
``static_resources.from_triton`` in a child process without ``TRITON_INTERPRET`` (a process that
imported triton interpreted holds interpreter versions of ``tl.sum``..., which the compiler
rejects), importing each kernel by module and qualified name, or from its file.

Types follow a torch launch: a tensor is a pointer to its dtype (16-byte aligned), an int
``i32``/``i64`` by value, specialised as a launch does (1 is a constant, multiples of 16 are
marked divisible by 16), so registers and spills are those of the kernel the GPU would run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib.util
import inspect
import os
import pickle
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


@dataclasses.dataclass(frozen=True)
class Launch:
    """One distinct compile: a kernel with its argument types, constexprs and launch options."""

    module: str
    qualname: str
    file: str  # where the child finds the module when it is not importable by name
    signature: tuple[tuple[str, str | int], ...]  # argument -> "*fp16", "i32", 1, 16 (_arg_type)
    constexprs: tuple[tuple[str, Any], ...]
    num_warps: int | None = None
    num_stages: int | None = None
    unsupported: str = ""  # why it cannot be compiled from the record (an argument type)

    def key(self) -> tuple:
        # repr: constexpr values (tl.dtype, floats, strings) need not hash alike across kinds
        return (self.module, self.qualname, self.signature, repr(self.constexprs),
                self.num_warps, self.num_stages)  # fmt: skip

    def replace(self, **constexprs: Any) -> Launch:
        """With constexprs changed, e.g. a flag the interpreter path sets unlike a GPU launch."""
        values = {**dict(self.constexprs), **constexprs}
        return dataclasses.replace(self, constexprs=tuple(values.items()))

    def describe(self) -> str:
        types, consts = ",".join(str(t) for _, t in self.signature), dict(self.constexprs)
        return (
            f"{self.qualname}({types}; {consts}; {self.num_warps} warps, {self.num_stages} stages)"
        )


def _arg_type(value: Any) -> str | int:
    """A Triton signature type for a launch argument (the rules of a torch launch); an integer
    becomes the smallest value a launch specialises alike (1, 16, 2**35 when divisible by 16),
    so that the compile sees a channel stride of 1 as the constant it is on the GPU, while
    launches differing only in sizes stay one record."""
    from .static_resources import _triton_type

    if not isinstance(value, bool | int | float) and not hasattr(value, "data_ptr"):
        raise TypeError(f"argument of type {type(value).__name__} is not recorded")
    if isinstance(value, int) and not isinstance(value, bool):
        if value == 1:
            return 1
        if value % 16 == 0:
            return 16 if _triton_type(value) == "i32" else 1 << 35
    return _triton_type(getattr(value, "dtype", value))  # a tensor: a pointer to its dtype


def launch_of(fn, args: tuple, kwargs: dict) -> Launch:
    """The record of calling the Python kernel function ``fn`` with these launch arguments."""
    params = inspect.signature(fn).parameters
    given = {k: v for k, v in kwargs.items() if k in params}
    bound = inspect.signature(fn).bind_partial(*args, **given)
    bound.apply_defaults()  # non-constexpr defaults are typed; constexpr ones kept as values
    sig, consts, why = [], [], ""
    for name, value in bound.arguments.items():
        if "constexpr" in str(params[name].annotation):  # tl.constexpr, or "tl.constexpr"
            consts.append((name, value))
            continue
        try:
            sig.append((name, _arg_type(value)))
        except TypeError as exc:
            why = why or f"'{name}': {exc}"
    file = inspect.getsourcefile(fn) or fn.__code__.co_filename
    return Launch(fn.__module__, fn.__qualname__, file, tuple(sig), tuple(consts),
                  kwargs.get("num_warps"), kwargs.get("num_stages"), why)  # fmt: skip


@contextlib.contextmanager
def record_launches() -> Iterator[list[Launch]]:
    """Record every interpreted Triton launch in the block, deduplicated, in first-seen order.

    Every launch reaches ``InterpretedFunction.run``, through the ``Heuristics``/``Autotuner``
    wrappers too (their values arrive as kwargs). An autotuned launch also records the configs
    the autotuner would try (``Autotuner.warmup``: the interpreter runs none of them)."""
    from triton.runtime.autotuner import Autotuner
    from triton.runtime.interpreter import InterpretedFunction

    launches: list[Launch] = []
    seen: set[tuple] = set()
    interpreted_run, tuned_run = InterpretedFunction.run, Autotuner.run

    def run(self, *args, grid, warmup, **kwargs):
        rec = launch_of(self.fn, args, kwargs)
        if rec.key() not in seen:
            seen.add(rec.key())
            launches.append(rec)
        return interpreted_run(self, *args, grid=grid, warmup=warmup, **kwargs)

    def tuned(self, *args, **kwargs):
        # best effort: pruning may need what only a real launch has (the run still records)
        meta = {k: v for k, v in kwargs.items() if k != "warmup"}  # run(grid=, warmup=False)
        with contextlib.suppress(Exception):
            self.warmup(*args, **meta)
        return tuned_run(self, *args, **kwargs)

    InterpretedFunction.run, Autotuner.run = run, tuned
    try:
        yield launches
    finally:
        InterpretedFunction.run, Autotuner.run = interpreted_run, tuned_run


def compile_all(
    records: Iterable[Launch],
    arch: int = 90,
    *,
    jobs: int | None = None,
    timeout: float = 900,
    triton_dir: str | None = None,
) -> list[tuple[str, bool, str]]:
    """Compile each record for ``cuda:arch``: ``(kernel name, ok, message)`` per record, in order;
    the message describes the record, then Triton's error or ptxas's figures. ``jobs`` children
    share the records (one compile uses one core). ``triton_dir``: a folder holding another
    Triton (``scripts/fetch-triton.sh``), which the children import instead of this one: the
    GPU machine's version, say, whose compiler may refuse what this one accepts."""
    records = list(records)
    if not records:
        return []
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(records)))
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    if triton_dir:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [triton_dir, env.get("PYTHONPATH")]))
    out: list[tuple[str, bool, str]] = [("", False, "")] * len(records)
    with tempfile.TemporaryDirectory(prefix="kl-compile-") as tmp:
        children = []
        for j in range(jobs):
            part = list(range(j, len(records), jobs))
            src, dst = Path(tmp, f"in{j}.pkl"), Path(tmp, f"out{j}.pkl")
            src.write_bytes(pickle.dumps([records[i] for i in part]))
            cmd = [sys.executable, "-m", __name__, str(src), str(dst), str(arch)]
            pipes = {"stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE, "text": True}
            children.append((part, subprocess.Popen(cmd, env=env, **pipes), dst))
        for part, proc, dst in children:
            try:
                err = proc.communicate(timeout=timeout)[1]
            except subprocess.TimeoutExpired:
                proc.kill()
                err = f"timed out after {timeout:.0f} s\n{proc.communicate()[1]}"
            if proc.returncode == 0 and dst.exists():
                results = pickle.loads(dst.read_bytes())
            else:
                why = f"compile process failed (rc {proc.returncode}): {(err or '')[-800:]}"
                results = [(records[i].qualname, False, why) for i in part]
            for i, res in zip(part, results, strict=True):
                out[i] = res
    return out


def _load(rec: Launch):
    """The kernel, imported by module name, or from its file when that is no module."""
    from triton.runtime.jit import JITFunction

    try:
        module = importlib.import_module(rec.module)
    except ModuleNotFoundError:
        spec = importlib.util.spec_from_file_location(rec.module, rec.file)
        module = importlib.util.module_from_spec(spec)
        sys.modules[rec.module] = module  # kernels look their helpers up in module globals
        spec.loader.exec_module(module)
    obj = functools.reduce(getattr, rec.qualname.split("."), module)
    while not isinstance(obj, JITFunction) and hasattr(obj, "fn"):
        obj = obj.fn  # the name is an @autotune/@heuristics wrapper: the JITFunction is inside
    return obj


def _explain(exc: BaseException | None, limit: int = 12) -> str:
    """Triton's error, short: for each CompilationError down the chain (one per nested kernel
    call), its location and offending line (not the 12 lines above it), then the message."""
    out: list[str] = []
    while exc is not None and len(out) < limit:
        lines = str(exc).strip().splitlines() or [""]
        if out and any(lines[0] in line for line in out):
            break  # the cause Triton wrapped repeats the message already shown
        caret = next((i for i, line in enumerate(lines) if line.strip() == "^"), 0)
        head = f"{type(exc).__name__}: {lines[0]}"
        out += [head, *lines[caret - 1 : caret + 3]] if caret else [head, *lines[1:3]]
        exc = exc.__cause__
    return "\n".join(out[:limit])


def _compile_one(rec: Launch, arch: int) -> tuple[str, bool, str]:
    from .static_resources import from_triton

    if rec.unsupported:
        return rec.qualname, False, f"{rec.describe()}: not compiled: {rec.unsupported}"
    try:
        res = from_triton(
            _load(rec), dict(rec.signature), dict(rec.constexprs), arch=arch,
            num_warps=rec.num_warps, num_stages=rec.num_stages,
        )  # fmt: skip
    except Exception as exc:  # the kernel's compile error is the result
        return rec.qualname, False, f"{rec.describe()}:\n{_explain(exc)}"
    regs, spill, shared = res.registers_per_thread, res.spill_stores_bytes, res.shared_bytes
    return rec.qualname, True, f"{rec.describe()}: {regs} regs, {spill} B spilled, {shared} B smem"


def _older_dot_default() -> None:
    """Fail, as older Triton does, a ``tl.dot`` with a non-float32 accumulator and no out_dtype.

    Triton 3.6 (the first H100 run's) defaults ``out_dtype`` to float32 and asserts the
    accumulator has it, so ``tl.dot(a_i8, b_i8, acc_i32)`` fails there; Triton 3.9 (CPU CI) takes
    the accumulator's dtype. Without this rule the check could not see the bug it was written
    for; an explicit ``out_dtype`` is right on every version. Never undone: the child compiles."""
    from triton.language import core as tl
    from triton.language.semantic import TritonSemantic

    plain = TritonSemantic.dot
    params = inspect.signature(plain)

    def dot(*args, **kwargs):
        call = params.bind(*args, **kwargs).arguments
        got = call["acc"].type.element_ty if call.get("acc") is not None else tl.float32
        if call.get("out_dtype") is None and got != tl.float32:
            raise AssertionError(
                f"expected accumulator dtype fp32, got {got}; pass out_dtype={got} to use this "
                "accumulator dtype (Triton 3.6 defaults tl.dot's out_dtype to float32)"
            )
        return plain(*args, **kwargs)

    TritonSemantic.dot = dot


def _main(argv: list[str]) -> int:
    src, dst, arch = argv[0], argv[1], int(argv[2])
    if os.environ.get("TRITON_INTERPRET"):  # from_triton would only note that it cannot compile
        sys.exit("compile_check: run without TRITON_INTERPRET")
    _older_dot_default()
    import triton

    results = [
        (name, ok, f"{msg} [Triton {triton.__version__}]")
        for name, ok, msg in (_compile_one(r, arch) for r in pickle.loads(Path(src).read_bytes()))
    ]
    Path(dst).write_bytes(pickle.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
