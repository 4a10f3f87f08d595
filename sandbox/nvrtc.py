"""Compile raw CUDA C++ with NVRTC and launch it on torch tensors through the driver API.

The helper that ``cuda`` candidates call::

    from kernelloop.sandbox.nvrtc import load_kernel
    kernel = load_kernel(CUDA_SRC, "my_kernel")   # compiles now; CudaCompileError on bad code
    kernel(grid, block, x, y, n, shared_mem=0)    # tensors -> device pointers, scalars by type

Compilation needs no GPU (NVRTC is a library), so a CPU machine still reports build errors with
line numbers; only the launch needs a device. Line numbers count from the first line of the
source string. Launches go on torch's current stream inside the device's primary context (the
one torch uses), so torch ops before and after are ordered with the kernel, and ``launch_count``
lets the evaluator check that a candidate launched its own kernels.
Headers: NVRTC ships none of the CUDA headers (not even ``cuda_fp16.h``) and no C++ standard
library; we add the toolkit's include folder where one is found (see ``_include_dirs``) and an
in-memory ``<cstdint>``.
"""

from __future__ import annotations

import ctypes
import functools
import re
import time
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

from ..errors import KernelloopError

_LAUNCHES = 0  # successful launches in this process; read through launch_count()
_MAX_LOG_LINES = 60  # compile errors go to an LLM: long template dumps are cut here


def launch_count() -> int:
    """How many kernels ``load_kernel`` callables have launched in this process."""
    return _LAUNCHES


class CudaError(KernelloopError, RuntimeError):
    """Base of the errors below."""


class CudaCompileError(CudaError):
    """NVRTC rejected the source; the message holds its log (``NAME.cu(LINE): error: ...``)."""

    def __init__(self, message: str, *, kernel: str = "", log: str = "") -> None:
        super().__init__(message)
        self.kernel, self.log = kernel, log


class CudaLaunchError(CudaError):
    """The driver refused to load or launch the kernel; the message names the CUresult."""


class CudaUnavailableError(CudaError):
    """The kernel compiled, but this machine has no CUDA device to run it on."""


@dataclass(frozen=True)
class CompiledCuda:
    ptx: str
    cubin: bytes | None  # only when compiled for a real architecture (sm_XY)
    log: str  # NVRTC log; with a CUBIN it holds ptxas -v lines (registers, spills)
    arch: str  # "sm_90" (CUBIN + PTX) or "compute_90" (PTX only)
    seconds: float
    name: str = ""  # the name expression asked for
    lowered_name: str = ""  # the symbol in the module (mangled unless extern "C")
    options: tuple[str, ...] = ()


# --- compiling ----------------------------------------------------------------------------------

# NVRTC has no C++ standard library. This mirrors what CCCL's <cuda/std/cstdint> declares under
# NVRTC (int64_t is long long), so both headers can be included together.
_STDINT = """#pragma once
typedef signed char int8_t; typedef short int16_t; typedef int int32_t; typedef long long int64_t;
typedef unsigned char uint8_t; typedef unsigned short uint16_t; typedef unsigned int uint32_t;
typedef unsigned long long uint64_t;
typedef long long intptr_t; typedef unsigned long long uintptr_t;
"""
_SHIM_HEADERS = {"cstdint": _STDINT, "stdint.h": _STDINT}


def compile_cuda(
    source: str, name: str, *, arch: str | None = None, options: tuple[str, ...] | list[str] = ()
) -> CompiledCuda:
    """Compile ``source`` with NVRTC; ``name`` is the ``__global__`` function to export.

    ``arch`` defaults to the visible GPU (``sm_XY``: CUBIN, so an older driver never has to JIT
    newer PTX) or, without one, ``compute_90`` (PTX only: proves the code compiles).
    """
    from cuda.bindings import nvrtc

    base = name.split("<")[0].strip()
    _check_declared(source, base)
    options = [_translate_option(o) for o in options]
    for opt in list(options):  # an architecture in the options wins over the default
        m = re.fullmatch(r"(?:-arch|--gpu-architecture)[= ]?(\S+)", opt)
        if m:
            arch = m.group(1)
            options.remove(opt)
    arch = arch or _default_arch()
    opts = ["--std=c++17", "-lineinfo", f"--gpu-architecture={arch}"]
    opts += [f"-I{d}" for d in _include_dirs()]
    if arch.startswith("sm_"):
        opts.append("--ptxas-options=-v")  # resource usage lands in the log, parsed later
    opts += options

    start = time.perf_counter()
    err, prog = nvrtc.nvrtcCreateProgram(
        source.encode(),
        f"{base}.cu".encode(),
        len(_SHIM_HEADERS),
        [h.encode() for h in _SHIM_HEADERS.values()],
        [k.encode() for k in _SHIM_HEADERS],
    )
    if err != nvrtc.nvrtcResult.NVRTC_SUCCESS:
        raise CudaCompileError(f"NVRTC could not create a program for '{name}': {err.name}")
    try:
        nvrtc.nvrtcAddNameExpression(prog, name.encode())  # maps name -> mangled symbol
        (result,) = nvrtc.nvrtcCompileProgram(prog, len(opts), [o.encode() for o in opts])
        _, size = nvrtc.nvrtcGetProgramLogSize(prog)
        buf = b" " * size
        nvrtc.nvrtcGetProgramLog(prog, buf)
        log = buf.rstrip(b"\x00").decode(errors="replace").strip()
        if result != nvrtc.nvrtcResult.NVRTC_SUCCESS:
            raise CudaCompileError(_compile_message(name, arch, log), kernel=name, log=log)
        _, size = nvrtc.nvrtcGetPTXSize(prog)
        ptx = b" " * size
        nvrtc.nvrtcGetPTX(prog, ptx)
        cubin = None
        if arch.startswith("sm_"):
            _, size = nvrtc.nvrtcGetCUBINSize(prog)
            cubin = b" " * size
            nvrtc.nvrtcGetCUBIN(prog, cubin)
        _, lowered = nvrtc.nvrtcGetLoweredName(prog, name.encode())
    finally:
        nvrtc.nvrtcDestroyProgram(prog)
    return CompiledCuda(
        ptx=ptx.rstrip(b"\x00").decode(),
        cubin=cubin,
        log=log,
        arch=arch,
        seconds=time.perf_counter() - start,
        name=name,
        lowered_name=lowered.decode(),
        options=tuple(opts),
    )


def _translate_option(opt: str) -> str:
    # NVRTC rejects nvcc's -O flags ("unrecognized option -O3"); device code is optimised anyway,
    # so the level goes to ptxas, which is what -O means for device code under nvcc.
    m = re.fullmatch(r"-O([0-3])", opt)
    return f"--ptxas-options=-O{m.group(1)}" if m else opt


def _compile_message(name: str, arch: str, log: str) -> str:
    lines = log.splitlines()
    if len(lines) > _MAX_LOG_LINES:
        lines = lines[:_MAX_LOG_LINES] + [f"... {len(lines) - _MAX_LOG_LINES} more log lines"]
    return (
        f"NVRTC could not compile kernel '{name}' for {arch}:\n" + "\n".join(lines) + "\n"
        "Line numbers count from the first line of the CUDA source string; fix the first error "
        "first, later ones often follow from it."
    )


def _strip_comments(source: str) -> str:
    return re.sub(
        r"//[^\n]*|/\*.*?\*/", lambda m: re.sub(r"[^\n]", " ", m.group()), source, flags=re.S
    )


def _check_declared(source: str, base: str) -> None:
    if not re.search(rf"__global__[^;{{}}]*?\b{re.escape(base)}\s*\(", _strip_comments(source)):
        found = re.findall(r"__global__[^;{}]*?\b(\w+)\s*\(", _strip_comments(source))
        raise CudaCompileError(
            f"no __global__ function named '{base}' in the CUDA source (found: "
            f"{', '.join(found) or 'none'}); declare it as "
            f'extern "C" __global__ void {base}(...) or pass the right name.',
            kernel=base,
        )


def _default_arch() -> str:
    torch = _cuda_torch()
    if torch is None:
        return "compute_90"  # no GPU: PTX for Hopper still checks that the code compiles
    from cuda.bindings import nvrtc

    major, minor = torch.cuda.get_device_capability()
    cc = major * 10 + minor
    _, supported = nvrtc.nvrtcGetSupportedArchs()
    if cc in supported:
        return f"sm_{cc}"
    # An NVRTC older than the GPU: emit PTX for the newest arch it knows; the driver JITs it.
    older = [a for a in supported if a <= cc]
    return f"compute_{max(older)}" if older else f"sm_{cc}"


@functools.cache
def _include_dirs() -> tuple[str, ...]:
    """The CUDA toolkit's include folder (cuda_fp16.h, cuda_bf16.h, ...) plus CCCL's, if found.

    Searched in order: cuda-pathfinder (CUDA_HOME/CUDA_PATH, pip wheels, the system toolkit),
    /usr/local/cuda, and the headers Triton bundles. One toolkit only: mixing versions breaks.
    """
    found: list[Path] = []
    try:
        import cuda.pathfinder as pathfinder

        for lib in ("cudart", "cccl"):
            d = pathfinder.find_nvidia_header_directory(lib)
            found += [Path(d)] if d else []
    except Exception:  # older cuda-pathfinder or none: fall through to the fixed places
        pass
    found.append(Path("/usr/local/cuda/include"))
    spec = find_spec("triton")  # no import: importing triton takes seconds
    if spec and spec.submodule_search_locations:
        found += [Path(p) / "backends/nvidia/include" for p in spec.submodule_search_locations]
    for root in found:
        if (root / "cuda_fp16.h").is_file():
            cccl = [d for d in (*found, root / "cccl") if (d / "cuda/std/cstdint").is_file()]
            return (str(root), *(str(d) for d in cccl[:1]))
    return ()


# --- the kernel's parameter list ----------------------------------------------------------------

_QUALIFIERS = {"const", "volatile", "__restrict__", "__restrict", "restrict", "__grid_constant__"}
_I8, _U8, _I16, _U16 = ctypes.c_int8, ctypes.c_uint8, ctypes.c_int16, ctypes.c_uint16
_I32, _U32, _I64, _U64 = ctypes.c_int32, ctypes.c_uint32, ctypes.c_int64, ctypes.c_uint64
# fmt: off
_SCALARS: dict[str, type] = {
    "bool": ctypes.c_bool, "char": _I8, "signed char": _I8, "int8_t": _I8,
    "unsigned char": _U8, "uint8_t": _U8, "short": _I16, "short int": _I16, "int16_t": _I16,
    "unsigned short": _U16, "uint16_t": _U16, "int": _I32, "signed": _I32, "signed int": _I32,
    "int32_t": _I32, "unsigned": _U32, "unsigned int": _U32, "uint32_t": _U32,
    "long": _I64, "long int": _I64, "long long": _I64, "long long int": _I64, "int64_t": _I64,
    "signed long long": _I64, "ptrdiff_t": _I64, "intptr_t": _I64, "unsigned long": _U64,
    "unsigned long long": _U64, "unsigned long long int": _U64, "uint64_t": _U64,
    "size_t": _U64, "uintptr_t": _U64, "float": ctypes.c_float, "double": ctypes.c_double,
}
# Element type -> torch dtype name, to catch e.g. a half tensor passed to a float* (silent garbage).
_POINTEE_DTYPES = {
    "float": "float32", "double": "float64", "half": "float16", "__half": "float16",
    "__nv_bfloat16": "bfloat16", "nv_bfloat16": "bfloat16", "int": "int32", "int32_t": "int32",
    "long long": "int64", "int64_t": "int64", "unsigned char": "uint8", "uint8_t": "uint8",
    "signed char": "int8", "int8_t": "int8", "bool": "bool", "short": "int16", "int16_t": "int16",
}
# fmt: on


@dataclass(frozen=True)
class Param:
    name: str
    decl: str  # as written, e.g. "const float* __restrict__ x"
    pointer: bool
    base: str  # the type without qualifiers and stars, e.g. "float"
    ctype: type | None  # ctypes type for scalars; None for pointers


def parse_signature(source: str, name: str) -> list[Param]:
    """The parameters of ``__global__ ... name(...)``; TypeError for types we cannot pass."""
    text = _strip_comments(source)
    m = re.search(rf"__global__[^;{{}}]*?\b{re.escape(name)}\s*\(", text)
    if not m:
        raise TypeError(f"no __global__ function named '{name}' in the CUDA source")
    depth, i = 1, m.end()
    while depth and i < len(text):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        i += 1
    inner = " ".join(text[m.end() : i - 1].split())
    if inner in ("", "void"):
        return []
    return [_parse_param(part.strip(), name) for part in inner.split(",")]


def _parse_param(decl: str, kernel: str) -> Param:
    tokens = [t for t in re.findall(r"[A-Za-z_]\w*|\*|&|\[\]", decl) if t not in _QUALIFIERS]
    pointer = "*" in tokens or "[]" in tokens
    words = [t for t in tokens if t not in ("*", "&", "[]")]
    # The last word is the parameter's name unless the rest would not be a type (unnamed param).
    if len(words) > 1 and (pointer or " ".join(words[:-1]) in _SCALARS):
        pname, words = words[-1], words[:-1]
    else:
        pname = ""
    base = " ".join(words)
    if "&" in tokens or (not pointer and base not in _SCALARS):
        raise TypeError(
            f"kernel '{kernel}' parameter '{decl}' cannot be passed by load_kernel; use pointers "
            f"(torch tensors) or scalars of type {', '.join(sorted({*_SCALARS} - {'signed'}))}."
        )
    return Param(pname, decl, pointer, base, None if pointer else _SCALARS[base])


# --- launching ----------------------------------------------------------------------------------


def load_kernel(
    source: str, name: str, *, options: tuple[str, ...] | list[str] = (), arch: str | None = None
) -> CudaKernel:
    """Compile now (errors surface at import of the candidate) and return a launcher."""
    params = parse_signature(source, name.split("<")[0].strip())
    return CudaKernel(compile_cuda(source, name, arch=arch, options=options), params)


class CudaKernel:
    """``kernel(grid, block, *args, shared_mem=0)`` launches on torch's current stream."""

    def __init__(self, compiled: CompiledCuda, params: list[Param]) -> None:
        self.compiled, self.params = compiled, params
        self._functions: dict[int, object] = {}  # device ordinal -> CUfunction (per context)
        self._modules: dict[int, object] = {}
        self._shared_set: dict[int, int] = {}  # device -> dynamic smem limit already raised

    @property
    def signature(self) -> str:
        return f"{self.compiled.name}({', '.join(p.decl for p in self.params)})"

    def __call__(self, grid, block, *args, shared_mem: int = 0) -> None:
        global _LAUNCHES
        if len(args) != len(self.params):
            raise TypeError(
                f"kernel {self.signature} takes {len(self.params)} arguments after grid and "
                f"block, got {len(args)}"
            )
        torch = _cuda_torch()
        if torch is None:
            raise CudaUnavailableError(
                f"kernel '{self.compiled.name}' compiled, but there is no CUDA device to run it "
                "on (torch.cuda.is_available() is False); only build errors can be checked here."
            )
        g, b = _dims(grid, "grid"), _dims(block, "block")
        values, devices = _pack(self, args, torch)
        if len(devices) > 1:
            raise ValueError(f"kernel '{self.compiled.name}' got tensors on devices {devices}")
        device = devices.pop() if devices else torch.cuda.current_device()
        from cuda.bindings import driver as cu

        func = self._function(device, cu)
        if shared_mem > 48 * 1024 and self._shared_set.get(device, 0) < shared_mem:
            # Above 48 KiB of dynamic shared memory a kernel must opt in explicitly.
            attr = cu.CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
            _drv(cu.cuFuncSetAttribute(func, attr, shared_mem), "cuFuncSetAttribute", cu)
            self._shared_set[device] = shared_mem
        stream = cu.CUstream(torch.cuda.current_stream(device).cuda_stream)
        ptrs = (ctypes.c_void_p * max(len(values), 1))(*[ctypes.addressof(v) for v in values])
        # kernelParams as the address of a void*[] and extra as 0 (NULL): plain ints are the one
        # spelling every cuda-bindings release accepts (13.3 rejects None for extra).
        params = ctypes.addressof(ptrs) if values else 0
        result = cu.cuLaunchKernel(func, *g, *b, shared_mem, stream, params, 0)
        _drv(result, f"launching '{self.compiled.name}' grid={g} block={b} smem={shared_mem}", cu)
        _LAUNCHES += 1

    def attributes(self, device: int | None = None) -> dict[str, int]:
        """Registers per thread, local memory per thread (non-zero: spills or stack arrays),
        static shared memory and the largest block, as the driver reports them. Needs a GPU;
        unlike the ptxas lines in ``compiled.log`` it works with every NVRTC (13.0 gives none).
        """
        torch = _cuda_torch()
        if torch is None:
            raise CudaUnavailableError("kernel attributes need a CUDA device")
        from cuda.bindings import driver as cu

        func = self._function(torch.cuda.current_device() if device is None else device, cu)
        a = cu.CUfunction_attribute
        names = {
            "registers": a.CU_FUNC_ATTRIBUTE_NUM_REGS,
            "local_bytes": a.CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES,
            "static_shared_bytes": a.CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES,
            "max_threads_per_block": a.CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK,
        }
        return {k: _drv(cu.cuFuncGetAttribute(v, func), k, cu) for k, v in names.items()}

    def _function(self, device: int, cu):
        if device not in self._functions:
            _activate_primary_context(device, cu)
            image = self.compiled.cubin or (self.compiled.ptx.encode() + b"\x00")
            module = _drv(cu.cuModuleLoadData(image), f"loading '{self.compiled.name}'", cu)
            self._modules[device] = module  # a module must outlive its function
            symbol = self.compiled.lowered_name.encode()
            self._functions[device] = _drv(
                cu.cuModuleGetFunction(module, symbol), "cuModuleGetFunction", cu
            )
        else:
            _activate_primary_context(device, cu)
        return self._functions[device]


def _activate_primary_context(device: int, cu) -> None:
    # torch's runtime calls run in the device's primary context; the driver API needs it current
    # on this thread too, or the module lands in another context and torch pointers are invalid.
    cu.cuCtxSetCurrent(_primary_context(device, cu))


@functools.cache
def _primary_context(device: int, cu):
    _drv(cu.cuInit(0), "cuInit", cu)
    dev = _drv(cu.cuDeviceGet(device), "cuDeviceGet", cu)
    return _drv(cu.cuDevicePrimaryCtxRetain(dev), "cuDevicePrimaryCtxRetain", cu)


def _drv(result, what: str, cu):
    """Unpack a cuda.bindings (CUresult, value...) tuple, raising CudaLaunchError on failure."""
    err, *rest = result
    if err != cu.CUresult.CUDA_SUCCESS:
        _, text = cu.cuGetErrorString(err)
        hint = ""
        if err == cu.CUresult.CUDA_ERROR_UNSUPPORTED_PTX_VERSION:
            hint = " (the driver is older than NVRTC: compile for the GPU's sm_XY to get a CUBIN)"
        detail = text.decode() if text else ""
        raise CudaLaunchError(f"{what} failed: {err.name}: {detail}{hint}")
    return rest[0] if len(rest) == 1 else rest


def _dims(value, what: str) -> tuple[int, int, int]:
    dims = tuple(value) if isinstance(value, tuple | list) else (value,)
    if not 1 <= len(dims) <= 3 or not all(isinstance(d, int) and d >= 1 for d in dims):
        raise ValueError(
            f"{what} must be a positive int or a tuple of 1-3 positive ints: {value!r}"
        )
    return (*dims, *(1,) * (3 - len(dims)))  # type: ignore[return-value]


def _pack(kernel: CudaKernel, args: tuple, torch) -> tuple[list, set[int]]:
    """ctypes values for the kernel's parameters, and the CUDA devices of the tensor arguments."""
    values, devices = [], set()
    for i, (p, a) in enumerate(zip(kernel.params, args, strict=True)):
        where = f"argument {i} ('{p.decl}') of kernel {kernel.signature}"
        if p.pointer:
            if not isinstance(a, torch.Tensor):
                raise TypeError(f"{where} needs a torch tensor, got {type(a).__name__}")
            if not a.is_cuda:
                raise ValueError(f"{where} is a tensor on {a.device}; move it with .cuda()")
            want = _POINTEE_DTYPES.get(p.base)
            if want and str(a.dtype) != f"torch.{want}":
                raise TypeError(f"{where} points to {p.base} ({want}) but the tensor is {a.dtype}")
            devices.add(a.device.index)
            values.append(ctypes.c_void_p(a.data_ptr()))
        elif p.ctype in (ctypes.c_float, ctypes.c_double):
            if isinstance(a, bool) or not isinstance(a, int | float):
                raise TypeError(f"{where} needs a Python float, got {type(a).__name__}")
            values.append(p.ctype(a))
        else:
            if not isinstance(a, int):  # bool is an int; tensors and floats are not
                raise TypeError(f"{where} needs a Python int, got {type(a).__name__}")
            bits = 8 * ctypes.sizeof(p.ctype)
            signed = p.ctype(-1).value == -1
            lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
            if p.ctype is not ctypes.c_bool and not lo <= a <= hi:
                raise OverflowError(f"{where}: {a} does not fit in {p.base} ({lo}..{hi})")
            values.append(p.ctype(a))
    return values, devices


def _cuda_torch():
    """torch if a CUDA device is visible, else None (imported lazily: compiling needs no torch)."""
    import torch

    return torch if torch.cuda.is_available() else None
