"""Which modules a candidate's names may reach: the static gate's allowlist (threat row 23).

A name in candidate source is judged by what it *is*, not by how it is spelled: ``torch.sys`` is
the module ``sys``, whatever prefix it hides behind. :func:`reach` follows a qualified name
(``torch.nn.functional.relu``) through the real, already importable packages, one attribute at a
time, and names the first module on the way that is not allowed. It reads attributes with
``inspect.getattr_static`` (no property, descriptor or lazy hook of an object runs: reading
``triton.runtime.driver.active`` would start a CUDA driver in the orchestrator) and finds
submodules by their import spec without importing them. Only the allowed roots are ever imported
here; candidate code never is.

What the walk cannot follow (a value computed at run time: a call result, a subscript, a
parameter) is judged by attribute *name* instead: :func:`escape_attrs` lists every name under
which an allowed module holds a dangerous one (``torch.os``, ``enum.bltns``, ``collections._sys``).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
import types

# Modules a candidate may import and reach. Compute namespaces (torch.special, torch.linalg, ...)
# are reachable so that using them is reported as torch compute (row 9), not as an escape.
ALLOWED_MODULES = frozenset(
    """
    torch torch.nn torch.nn.functional torch.nn.init torch.nn.parameter torch.nn.common_types
    torch.cuda torch.cuda.amp torch.backends torch.backends.cuda torch.backends.cudnn
    torch.version torch.types torch.autograd torch.autograd.function torch.amp torch.random
    torch.functional torch.special torch.linalg torch.fft torch.sparse torch.nested torch.func
    torch.library torch.compiler torch.jit torch.ops torch.utils torch.utils.cpp_extension
    torch._inductor torch._inductor.runtime torch._inductor.runtime.triton_helpers
    triton triton.language triton.runtime triton.runtime.driver
    math typing functools itertools operator dataclasses enum numbers __future__ collections
    collections.abc warnings logging
    kernelloop kernelloop.sandbox kernelloop.sandbox.nvrtc
    """.split()
)
ALLOWED_PREFIXES = ("triton.language.",)  # libdevice, extra.cuda, math, core, standard, ...
# Modules reachable only along one path: through them a candidate may name these members and
# nothing else (the CUDA helper's `ctypes`, the sandbox's guards, Inductor's other internals).
MEMBERS = {
    "kernelloop": frozenset({"sandbox"}),
    "kernelloop.sandbox": frozenset({"nvrtc"}),
    "kernelloop.sandbox.nvrtc": frozenset({"load_kernel", "CudaCompileError"}),
    "torch._inductor": frozenset({"runtime"}),
    "torch._inductor.runtime": frozenset({"triton_helpers"}),
    # Triton by member: what kernels and their launchers use. Out: JITFunction and the other
    # runtime classes (constructed on one's own function they hand out its module's globals:
    # get_capture_scope), compile, knobs, testing, tools.
    "triton": frozenset(
        """jit autotune heuristics Config cdiv next_power_of_2 language runtime reinterpret
        TensorWrapper constexpr_function set_allocator must_use_result aggregate
        CompilationError OutOfResources TritonError InterpreterError""".split()
    ),
    "triton.runtime": frozenset(
        "driver Config autotune heuristics OutOfResources InterpreterError".split()
    ),
    # The pure standard modules, by member: what kernels and their wrappers use. Left out on
    # purpose: typing.ForwardRef (evaluates strings), get_type_hints and dataclasses.fields
    # (hand out classes), operator.attrgetter/methodcaller/call (reach objects by name).
    "typing": frozenset(
        """Any Optional Union List Tuple Dict Set FrozenSet Callable Sequence Iterable Iterator
        Mapping MutableMapping Type Literal Final ClassVar TYPE_CHECKING cast overload TypeVar
        Generic Protocol NamedTuple TypedDict Annotated Hashable Generator Self NoReturn
        Never TypeAlias Concatenate ParamSpec DefaultDict OrderedDict Counter Deque""".split()
    ),
    "functools": frozenset(
        """partial reduce lru_cache cache cached_property wraps total_ordering partialmethod
        cmp_to_key""".split()
    ),
    "operator": frozenset(
        """abs add and_ concat contains eq floordiv ge getitem gt index inv invert is_ is_not
        itemgetter le lshift lt matmul mod mul ne neg not_ or_ pos pow rshift sub truediv
        truth xor""".split()
    ),
    "dataclasses": frozenset("dataclass field replace asdict astuple is_dataclass".split()),
    "enum": frozenset("Enum IntEnum StrEnum Flag IntFlag auto unique".split()),
    "collections": frozenset("namedtuple OrderedDict defaultdict deque Counter abc".split()),
    "warnings": frozenset({"warn"}),
    "logging": frozenset("getLogger debug info warning error DEBUG INFO WARNING ERROR".split()),
    "__future__": frozenset({"annotations"}),
}
# Modules that hand out the interpreter, the OS or raw memory. Their names, and the names under
# which allowed modules hold them, are refused on any object the walk cannot follow. (Not
# `select`: it is also Tensor.select, and no allowed module holds the module under that name.)
DANGEROUS = frozenset(
    """
    sys os posix posixpath builtins importlib ctypes _ctypes inspect gc threading _thread
    multiprocessing concurrent asyncio subprocess signal socket io _io pathlib shutil tempfile
    glob pickle marshal copyreg runpy code codeop types weakref _weakref atexit faulthandler
    pkgutil site sysconfig resource mmap fcntl traceback linecache tokenize platform
    zipimport _imp ptrace numpy
    """.split()
)
ALLOWED_ROOTS = frozenset(m.split(".")[0] for m in ALLOWED_MODULES)
MISSING = object()


def allowed_module(name: str) -> bool:
    return name in ALLOWED_MODULES or name.startswith(ALLOWED_PREFIXES)


def _submodule(parent: types.ModuleType, name: str) -> str | None:
    """``parent.name`` when it names a submodule, found without importing it."""
    full = f"{parent.__name__}.{name}"
    if full in importlib.sys.modules:
        return full
    if not hasattr(parent, "__path__"):
        return None
    try:
        return full if importlib.util.find_spec(full) is not None else None
    except (ImportError, ValueError):
        return None


@functools.cache
def _root(name: str) -> types.ModuleType | None:
    if name not in ALLOWED_ROOTS:
        return None
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


@functools.lru_cache(maxsize=4096)  # a pure lookup, asked once per name use
def walk(qualified: str) -> tuple[str | None, object]:
    """(why ``qualified`` is out of bounds, or None; the object it names, or MISSING where the
    path leaves what can be followed statically or the candidate names something absent)."""
    parts = qualified.split(".")
    obj: object = _root(parts[0])
    if obj is None:
        return None, MISSING  # not an allowed root: the import itself is refused
    path = parts[0]
    for part in parts[1:]:
        if isinstance(obj, types.ModuleType):
            members = MEMBERS.get(obj.__name__)
            if members is not None and part not in members:
                allowed = ", ".join(sorted(members))
                return f"{path}.{part}: only {allowed} may be used from {path}", MISSING
        value = inspect.getattr_static(obj, part, MISSING)
        if value is MISSING and isinstance(obj, types.ModuleType):
            sub = _submodule(obj, part)
            if sub is not None and not allowed_module(sub):
                return f"{path}.{part} is the module {sub}, which candidates may not use", MISSING
            if sub is not None:  # an allowed library module: importing it runs no candidate code
                value = importlib.import_module(sub)
        if value is MISSING:
            return None, MISSING
        path = f"{path}.{part}"
        if isinstance(value, types.ModuleType) and not allowed_module(value.__name__):
            return f"{path} is the module {value.__name__}, which candidates may not use", MISSING
        obj = value
    return None, obj


def reach(qualified: str) -> str | None:
    """Why ``qualified`` is out of bounds (``"torch.os is the module os, ..."``), or None."""
    return walk(qualified)[0]


def is_module(qualified: str) -> bool:
    return isinstance(walk(qualified)[1], types.ModuleType)


@functools.cache
def escape_attrs() -> frozenset[str]:
    """Attribute names under which an allowed module (or a class it defines) holds a dangerous
    module (``torch.os``, ``enum.bltns``, ``collections._sys``), plus the dangerous modules' own
    names: refused after any expression. Every allowed module is imported first, so the set
    does not depend on what else happened to be imported (it once grew with the test order)."""
    names = set(DANGEROUS)
    for mod_name in sorted(ALLOWED_MODULES):
        if _root(mod_name.split(".")[0]) is None:
            continue
        try:
            mod = importlib.import_module(mod_name)
        except ImportError:
            continue
        holders = [mod] + [v for v in vars(mod).values() if isinstance(v, type)]
        for holder in holders:
            for key, value in list(vars(holder).items()):
                if isinstance(value, types.ModuleType) and _dangerous_root(value.__name__):
                    names.add(key)
    return frozenset(n for n in names if not (n.startswith("__") and n.endswith("__")))


def _dangerous_root(name: str) -> bool:
    """The OS and interpreter modules themselves (private library modules, ``torch._C`` say,
    are reached as ``._C``: the gate refuses private members of foreign objects anyway)."""
    return name.split(".")[0] in DANGEROUS
