"""What a kernel costs the SM before it runs: registers per thread, spills, shared and local memory.

Three ways to know, tried in this order, each named in :attr:`StaticResources.source`:

- ``ptxas-log``: the ``ptxas -v`` lines the assembler prints. NVRTC passes them through when asked
  (``--ptxas-options=-v``; :func:`kernelloop.sandbox.nvrtc.compile_cuda` always asks for a CUBIN);
  NVRTC 13.5 prints them, NVRTC 13.0 prints nothing. Triton runs the ptxas it ships with ``-v``
  and shows the log when ``TRITON_DUMP_PTXAS_LOG`` is on, which :func:`from_triton` captures.
  Neither needs a GPU: NVRTC and ptxas are compilers, so a CPU machine can size an ``sm_90`` kernel.
- ``driver-attributes``: ``cuFuncGetAttribute`` on the loaded CUBIN (registers, local bytes, static
  shared, largest block). Needs a GPU of the compiled architecture; gives local memory (spills plus
  stack arrays together), never spill bytes.
- ``triton-metadata``: what Triton read from the driver when it loaded the kernel (``n_regs``,
  ``n_spills``; Triton's ``n_spills`` is local memory in 4-byte words, not ptxas's spill stores).

Registers cap occupancy (65,536 per SM); spills turn register traffic into local-memory traffic
through L1/L2. Both are what the Judge needs to say "fewer live values" or "smaller tile".

Finding the kernels of a whole candidate file is ``candidate_resources.py``'s job.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import re
from collections.abc import Mapping
from typing import Any, Literal

Source = Literal["ptxas-log", "driver-attributes", "triton-metadata", "none"]

# Launch options a Triton signature mapping may carry next to the kernel's arguments.
TRITON_OPTIONS = ("num_warps", "num_stages", "num_ctas", "maxnreg")


@dataclasses.dataclass
class StaticResources:
    kernel: str
    backend: str  # "cuda" | "cuda-inline" | "triton"
    arch: str  # what it was compiled for: "sm_90", "sm_90a"
    registers_per_thread: int | None = None
    spill_stores_bytes: int | None = None
    spill_loads_bytes: int | None = None
    shared_bytes: int | None = None  # per block; Triton's is requested at launch (dynamic)
    local_bytes: int | None = None  # per thread: ptxas's stack frame, or the driver's local size
    max_threads_per_block: int | None = None  # the driver's limit for this kernel; None: not asked
    source: Source = "none"
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def spills(self) -> bool | None:
        """True when ptxas reports spill traffic; None when nobody said."""
        if self.spill_stores_bytes is None and self.spill_loads_bytes is None:
            return None
        return bool(self.spill_stores_bytes or self.spill_loads_bytes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StaticResources:
        return cls(**{**data, "notes": list(data.get("notes", []))})


# --- ptxas -v -----------------------------------------------------------------------------------


@dataclasses.dataclass
class PtxasFunction:
    """One entry function's lines in a ``ptxas -v`` log."""

    name: str  # the symbol (mangled unless extern "C")
    arch: str = ""
    registers: int | None = None
    barriers: int | None = None
    shared_bytes: int = 0  # static __shared__; absent from the log when zero
    stack_bytes: int | None = None
    spill_stores_bytes: int | None = None
    spill_loads_bytes: int | None = None


# The tool's prefix varies ("ptxas", "ptxas-blackwell", an NVRTC program name), so patterns are
# anchored on the message text only.
_ENTRY = re.compile(r"Compiling entry function '([^']+)' for '([^']+)'")
_PROPS = re.compile(r"Function properties for (\S+)")
_FRAME = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_USED = re.compile(r"Used (\d+) registers")
_SMEM = re.compile(r"(\d+) bytes smem")
_BARRIERS = re.compile(r"used (\d+) barriers")


def parse_ptxas_log(log: str) -> dict[str, PtxasFunction]:
    """Entry functions in a ``ptxas -v`` log, by symbol name.

    Handles the layouts of CUDA 11-13 (``Used N registers, M bytes smem, K bytes cmem[0]`` and
    ``Used N registers, used B barriers, M bytes smem``). "Function properties" blocks of
    non-inlined device functions are read but only entry functions are returned.
    """
    found: dict[str, PtxasFunction] = {}
    props: dict[str, tuple[int, int, int]] = {}
    entry: PtxasFunction | None = None
    target: str | None = None  # whose "Function properties" block we are in
    for line in log.splitlines():
        if m := _ENTRY.search(line):
            entry = found.setdefault(m.group(1), PtxasFunction(m.group(1), arch=m.group(2)))
        elif m := _PROPS.search(line):
            target = m.group(1)
        elif m := _FRAME.search(line):
            if target is not None:
                props[target] = (int(m.group(1)), int(m.group(2)), int(m.group(3)))
        elif (m := _USED.search(line)) and entry is not None:
            entry.registers = int(m.group(1))
            if s := _SMEM.search(line):
                entry.shared_bytes = int(s.group(1))
            if b := _BARRIERS.search(line):
                entry.barriers = int(b.group(1))
    for name, fn in found.items():
        if name in props:
            fn.stack_bytes, fn.spill_stores_bytes, fn.spill_loads_bytes = props[name]
    return found


def _from_ptxas(fn: PtxasFunction, kernel: str, backend: str) -> StaticResources:
    return StaticResources(
        kernel=kernel,
        backend=backend,
        arch=fn.arch,
        registers_per_thread=fn.registers,
        spill_stores_bytes=fn.spill_stores_bytes,
        spill_loads_bytes=fn.spill_loads_bytes,
        shared_bytes=fn.shared_bytes,
        local_bytes=fn.stack_bytes,
        source="ptxas-log",
    )


# --- CUDA (NVRTC) ---------------------------------------------------------------------------------


def from_cuda_source(
    source: str, name: str, arch: str = "sm_90", *, options: tuple[str, ...] | list[str] = ()
) -> StaticResources:
    """Compile ``name`` from ``source`` for ``arch`` and report its resources.

    Raises :class:`kernelloop.sandbox.nvrtc.CudaCompileError` when the source does not compile.
    Without ptxas lines in NVRTC's log (NVRTC 13.0), asks the driver when a GPU of ``arch`` is
    present; otherwise the result says what is missing in ``notes``.
    """
    from kernelloop.sandbox import nvrtc

    compiled = nvrtc.compile_cuda(source, name, arch=arch, options=options)
    version = _nvrtc_version()
    symbol = compiled.lowered_name or name
    fn = parse_ptxas_log(compiled.log).get(symbol)
    if fn is not None:
        res = _from_ptxas(fn, name, "cuda")
        res.notes.append(f"ptxas -v through NVRTC {version}")
        return res
    res = StaticResources(kernel=name, backend="cuda", arch=compiled.arch)
    if not compiled.arch.startswith("sm_"):
        res.notes.append(f"compiled to PTX only ({compiled.arch}): ptxas never ran; pass sm_XY")
        return res
    why = f"NVRTC {version} printed no ptxas resource lines for '{symbol}'"
    gpu_arch = _visible_gpu_arch()
    if gpu_arch != compiled.arch:
        where = f"the GPU here is {gpu_arch}" if gpu_arch else "there is no GPU here"
        res.notes.append(f"{why}, and {where} to ask the driver; registers and spills unknown")
        return res
    params = nvrtc.parse_signature(source, name.split("<")[0].strip())
    attrs = _driver_attributes(nvrtc.CudaKernel(compiled, params))
    res.registers_per_thread = attrs["registers"]
    res.local_bytes = attrs["local_bytes"]
    res.shared_bytes = attrs["static_shared_bytes"]
    res.max_threads_per_block = attrs["max_threads_per_block"]
    res.source = "driver-attributes"
    res.notes.append(
        f"{why}; figures from the driver, which reports local memory (spills plus stack "
        "arrays), not spill bytes"
    )
    return res


def _driver_attributes(kernel) -> dict[str, int]:
    """The driver's view of a loaded kernel (the thin adapter that CPU tests patch)."""
    return kernel.attributes()


def _visible_gpu_arch() -> str | None:
    """``sm_XY`` of the current CUDA device, or None without one (the adapter tests patch)."""
    try:
        import torch

        if not torch.cuda.is_available():
            return None
        major, minor = torch.cuda.get_device_capability()
    except Exception:  # a broken CUDA install reads as "no GPU": the notes say so
        return None
    return f"sm_{major}{minor}"


def _nvrtc_version() -> str:
    try:
        from cuda.bindings import nvrtc

        _, major, minor = nvrtc.nvrtcVersion()
        return f"{major}.{minor}"
    except Exception:
        return "(unknown version)"


# --- Triton ---------------------------------------------------------------------------------------

_DTYPE_NAMES = {
    "float32": "fp32", "float16": "fp16", "bfloat16": "bf16", "float64": "fp64",
    "float8_e4m3fn": "fp8e4nv", "float8_e5m2": "fp8e5", "int64": "i64", "int32": "i32",
    "int16": "i16", "int8": "i8", "uint8": "u8", "bool": "i1",
}  # fmt: skip


def _triton_type(value: Any) -> str:
    """A Triton signature type: strings pass through ("*fp32", "i32"); a torch dtype means a
    pointer to it; a Python int or float means a scalar of that kind."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "i1"
    if isinstance(value, int):
        return "i32" if -(2**31) <= value < 2**31 else "i64"
    if isinstance(value, float):
        return "fp32"
    name = str(value).removeprefix("torch.")
    if name in _DTYPE_NAMES:
        return "*" + _DTYPE_NAMES[name]
    raise TypeError(f"cannot turn {value!r} into a Triton argument type; use e.g. '*fp32', 'i32'")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def from_triton(
    jit_fn,
    signature: Mapping[str, Any],
    constexprs: Mapping[str, Any] | None = None,
    *,
    arch: int = 90,
    num_warps: int | None = None,
    num_stages: int | None = None,
    aligned_pointers: bool = True,
) -> StaticResources:
    """Compile a ``@triton.jit`` kernel for ``cuda:arch`` without launching it, and report.

    ``signature`` maps argument names to Triton types (``"*fp32"``, ``"i32"``, a torch dtype for a
    pointer to it) or, for integers, to a launch's value, specialised as a launch does: 1 becomes
    a constant, a multiple of 16 is marked divisible by 16 (a channel stride of 1 or a row length
    of 4096 changes vectorisation, so registers and spills). Constexpr arguments take their values
    from ``constexprs`` or from ``signature``, and may be left out when they have defaults.
    ``aligned_pointers`` marks pointers 16-byte aligned, as a launch with torch tensors does.
    Raises Triton's ``CompilationError`` when the kernel does not compile.
    """
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.runtime.jit import JITFunction

    fn = jit_fn
    if not isinstance(fn, JITFunction):
        # Under TRITON_INTERPRET=1, @triton.jit gives an interpreter object; its .fn is the
        # Python function, which the compiler takes once wrapped again.
        fn = JITFunction(getattr(fn, "fn", fn))
    params = list(fn.params)
    sig: dict[str, str] = {}
    consts: dict[str, Any] = {}
    given = {**signature, **(constexprs or {})}
    for p in params:
        if p.is_constexpr:
            sig[p.name] = "constexpr"
            if p.name in given:
                consts[p.name] = given[p.name]
            elif p.has_default:
                consts[p.name] = p.default
            else:
                raise TypeError(f"constexpr argument '{p.name}' of {fn.__name__} needs a value")
        elif p.name in given:
            value = given[p.name]
            sig[p.name] = _triton_type(value)
            if _is_int(value) and value == 1:
                sig[p.name], consts[p.name] = "constexpr", 1
        else:
            raise TypeError(f"argument '{p.name}' of {fn.__name__} needs a type, e.g. '*fp32'")
    attrs = {
        (i,): [["tt.divisibility", 16]]
        for i, p in enumerate(params)
        if (aligned_pointers and sig[p.name].startswith("*"))
        or (_is_int(given.get(p.name)) and given[p.name] % 16 == 0 and not p.is_constexpr)
    }
    options = {k: v for k, v in (("num_warps", num_warps), ("num_stages", num_stages)) if v}
    src = triton.compiler.ASTSource(fn, signature=sig, constexprs=consts, attrs=attrs)
    log = io.StringIO()
    try:
        with _ptxas_log_shown(), contextlib.redirect_stdout(log):
            compiled = triton.compile(src, target=GPUTarget("cuda", arch, 32), options=options)
    except Exception as exc:
        if not _interpreting():
            raise
        # Triton's own library kernels (tl.max, tl.sum, ...) were defined as interpreter objects
        # when triton was imported with TRITON_INTERPRET=1; the compiler cannot use them.
        why = "cannot compile for a GPU in a process that imported triton with TRITON_INTERPRET=1"
        note = f"{why} (run without it): {first_lines(exc, 200)}"
        return StaticResources(fn.__name__, "triton", triton_arch(arch), notes=[note])
    meta = compiled.metadata
    kernel = getattr(meta, "name", fn.__name__)
    found = parse_ptxas_log(log.getvalue()).get(kernel)
    warps = getattr(meta, "num_warps", None)
    if found is not None:
        res = _from_ptxas(found, kernel, "triton")
        res.notes.append(f"ptxas -v of Triton {triton.__version__}'s own compile")
    else:
        res = StaticResources(kernel=kernel, backend="triton", arch=triton_arch(arch))
        res.notes.append(f"Triton {triton.__version__} showed no ptxas log (was it cached?)")
    res.shared_bytes = int(getattr(meta, "shared", 0) or 0)
    res.notes.append(
        f"{warps} warps ({(warps or 0) * 32} threads) per block; shared memory is requested "
        "at launch (dynamic)"
    )
    if _visible_gpu_arch() in (f"sm_{arch}", f"sm_{arch}a"):
        _add_triton_driver_view(res, compiled)
    elif found is None:
        res.notes.append(f"no GPU of sm_{arch} here to load it; registers and spills unknown")
    return res


def _add_triton_driver_view(res: StaticResources, compiled) -> None:
    """Load the kernel on the GPU (no launch) and read what Triton asked the driver."""
    try:
        compiled._init_handles()  # private, stable from 3.0 to 3.9: loads the module
        regs, spills = int(compiled.n_regs), int(compiled.n_spills)
        res.max_threads_per_block = int(compiled.n_max_threads)
    except Exception as exc:
        res.notes.append(f"loading on the GPU failed: {type(exc).__name__}: {exc}"[:300])
        return
    if res.source == "ptxas-log":
        if regs != res.registers_per_thread:
            res.notes.append(f"the driver reports {regs} registers per thread")
        return
    res.registers_per_thread, res.local_bytes = regs, 4 * spills
    res.source = "triton-metadata"
    res.notes.append("local_bytes is Triton's n_spills x 4 (local memory, not spill traffic)")


def from_launched(entries: list[dict[str, Any]]) -> list[StaticResources]:
    """Resources of the Triton kernels a timed candidate launched, as its worker reported them
    (``TimingResult.kernels``): what the driver said when each was loaded on the GPU."""
    out = []
    for e in entries:
        spills = e.get("spills")
        res = StaticResources(
            kernel=str(e.get("kernel", "?")),
            backend="triton",
            arch="",
            registers_per_thread=e.get("registers"),
            shared_bytes=e.get("shared_bytes"),
            local_bytes=4 * spills if isinstance(spills, int) else None,
            source="triton-metadata",
        )
        if isinstance(spills, int):  # local memory is where spilled registers go
            res.spill_stores_bytes = res.spill_loads_bytes = 4 * spills
        if e.get("num_warps"):
            res.notes.append(f"{e['num_warps']} warps, {e.get('num_stages')} stages")
        out.append(res)
    return out


def _interpreting() -> bool:
    from triton import knobs

    return bool(knobs.runtime.interpret)


def triton_arch(arch: int) -> str:
    return f"sm_{arch}a" if arch >= 90 else f"sm_{arch}"


@contextlib.contextmanager
def _ptxas_log_shown():
    """Make Triton compile afresh (its cache would skip ptxas) and print ptxas's -v log."""
    from triton import knobs

    with knobs.compilation.scope(), knobs.nvidia.scope():
        knobs.compilation.always_compile = True
        knobs.nvidia.dump_ptxas_log = True
        yield


# --- candidate files ------------------------------------------------------------------------------


def first_lines(error: object, limit: int = 400) -> str:
    text = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error)
    return text.strip()[:limit]
