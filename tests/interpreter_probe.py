"""Probe of the interpreter shims (sandbox/interpreter), run as a script by
tests/test_interpreter_cpu.py in a fresh process: the shims patch Triton process-wide, and another
Triton (``PYTHONPATH=.triton/3.6.0``) can only be chosen before it is imported.

Prints one JSON object: case name -> true, or what went wrong. Each case fails without its shim.
"""

import ctypes
import json
import os
import sys
import traceback

os.environ["TRITON_INTERPRET"] = "1"

import torch  # noqa: E402
import triton  # noqa: E402
import triton.language as tl  # noqa: E402
from triton.language.extra import libdevice  # noqa: E402
from triton.language.extra.cuda import libdevice as cuda_libdevice  # noqa: E402

from kernelloop.sandbox import interpreter  # noqa: E402

interpreter.install()

from triton.language.math import rsqrt  # noqa: E402  (by name, as Liger does)

from kernelloop.sandbox.guards import allowed_ops  # noqa: E402
from kernelloop.sandbox.interpreter import autotune, coverage  # noqa: E402

CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


@triton.jit
def _eps_flag(x_ptr, y_ptr, n, eps, negate, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    x = tl.load(x_ptr + offs, mask=offs < n)
    y = x + eps.to(tl.float32)
    if negate:
        y = -y
    tl.store(y_ptr + offs, y, mask=offs < n)


@case
def float_and_bool_arguments():
    x = torch.rand(100)
    y = torch.empty_like(x)
    _eps_flag[(2,)](x, y, 100, 0.25, True, BLOCK=64)
    return torch.allclose(y, -(x + 0.25))


@triton.jit
def _math(x_ptr, y_ptr, OP: tl.constexpr):
    offs = tl.arange(0, 64)
    x = tl.load(x_ptr + offs)
    if OP == 0:
        y = libdevice.rsqrt(x) + libdevice.tanh(x) + libdevice.erf(x)
    elif OP == 1:
        y = cuda_libdevice.exp(x) + cuda_libdevice.log1p(x) + cuda_libdevice.pow(x, 1.5)
    elif OP == 2:
        y = libdevice.isnan(x / 0.0 * 0.0).to(tl.float32) + rsqrt(x)
    else:
        y = x
    tl.store(y_ptr + offs, y)


@case
def libdevice_and_bare_builtins():
    x = torch.rand(64) + 0.1
    expected = [
        torch.rsqrt(x) + torch.tanh(x) + torch.erf(x),
        torch.exp(x) + torch.log1p(x) + x**1.5,
        1.0 + torch.rsqrt(x),
    ]
    for op, want in enumerate(expected):
        y = torch.empty_like(x)
        _math[(1,)](x, y, OP=op)
        if not torch.allclose(y, want, atol=1e-5):
            return f"op {op}: {(y - want).abs().max()}"
    return True


@triton.jit
def _widen(x, DT):
    tl.static_assert(DT.value.primitive_bitwidth == 64)
    return x.to(DT)


@triton.jit
def _dtypes(x_ptr, y_ptr, OUT: tl.constexpr):
    offs = tl.arange(0, 16)
    tl.store(y_ptr + offs, _widen(tl.load(x_ptr + offs), OUT).to(OUT.value))


@case
def dtype_arguments_are_constexprs():
    x = torch.rand(16)
    y = torch.empty(16, dtype=torch.float64)
    _dtypes[(1,)](x, y, OUT=tl.float64)
    return torch.equal(y, x.double())


RAN = []


def _note_block(nargs):
    RAN.append(nargs["BLOCK"])


@triton.autotune(
    configs=[
        triton.Config({"BLOCK": 32}, num_warps=4, pre_hook=_note_block),
        triton.Config({"BLOCK": 64}, num_warps=8, pre_hook=_note_block),
    ],
    key=["n"],
)
@triton.heuristics({"EVEN": lambda a: a["n"] % a["BLOCK"] == 0})
@triton.jit
def _tuned_copy(x_ptr, y_ptr, n, BLOCK: tl.constexpr, EVEN: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(y_ptr + offs, tl.load(x_ptr + offs, mask=offs < n), mask=offs < n)


@case
def autotune_runs_every_config_and_keeps_the_first():
    x = torch.rand(100)
    y = torch.empty_like(x)

    def grid(meta):
        return (triton.cdiv(100, meta["BLOCK"]),)

    _tuned_copy[grid](x, y, 100)
    if RAN != [32, 64, 32] or not torch.equal(x, y) or autotune.SEEN.count() != 2:
        return f"ran {RAN}, seen {autotune.SEEN.count()}"
    RAN.clear()
    with interpreter.forced_config(1):
        _tuned_copy[grid](x, y.zero_(), 100)
    return RAN == [64] and torch.equal(x, y) or f"forced ran {RAN}"


@case
def driver_stands_in_for_an_h100():
    from triton.runtime import driver

    props = driver.active.utils.get_device_properties(driver.active.get_current_device())
    target = driver.active.get_current_target()
    return props["multiprocessor_count"] == 132 and props["warpSize"] == 32 and target.arch == 90


@triton.jit
def _carry_chain(x_ptr, y_ptr, B: tl.constexpr):
    # program p adds the last prefix sum program p-1 stored: a race on a GPU
    p = tl.program_id(0)
    offs = p * B + tl.arange(0, B)
    carry = tl.load(y_ptr + p * B - 1, mask=p > 0, other=0.0)
    tl.store(y_ptr + offs, tl.cumsum(tl.load(x_ptr + offs), axis=0) + carry)


@case
def reversed_program_order_exposes_a_carry_race():
    x = torch.randn(64)
    natural = torch.full((64,), float("nan"))
    _carry_chain[(8,)](x, natural, B=8)
    reversed_ = torch.full((64,), float("nan"))
    with interpreter.program_order("reversed"):
        _carry_chain[(8,)](x, reversed_, B=8)
    want = torch.cumsum(x, 0)
    ok = torch.allclose(natural, want, atol=1e-5)
    return ok and not torch.allclose(reversed_, want, atol=1e-5, equal_nan=False)


@triton.jit
def _relu(x_ptr, y_ptr, n, B: tl.constexpr):
    offs = tl.program_id(0) * B + tl.arange(0, B)
    tl.store(y_ptr + offs, tl.maximum(tl.load(x_ptr + offs, mask=offs < n), 0.0), mask=offs < n)


@triton.jit
def _copy(x_ptr, y_ptr, n, B: tl.constexpr):
    offs = tl.program_id(0) * B + tl.arange(0, B)
    tl.store(y_ptr + offs, tl.load(x_ptr + offs, mask=offs < n), mask=offs < n)


@triton.jit
def _nothing(y_ptr):
    pass


@triton.jit
def _scatter_add(x_ptr, y_ptr, n, B: tl.constexpr):
    offs = tl.program_id(0) * B + tl.arange(0, B)
    tl.atomic_add(y_ptr + offs % 4, tl.load(x_ptr + offs, mask=offs < n), mask=offs < n)


def _host_relu(src, dst):
    n = src.numel()
    x = (ctypes.c_float * n).from_address(src.data_ptr())
    y = (ctypes.c_float * n).from_address(dst.data_ptr())
    for i in range(n):
        y[i] = max(x[i], 0.0)


def _launch(kernel, *args):
    kernel[(4,)](*args, B=128) if kernel is not _nothing else kernel[(1,)](*args)


# (name, forward, elements of output 0 that must be reported untracked)
COVERAGE = [
    ("kernel", lambda x: _fresh(lambda y: _launch(_relu, x, y, x.numel())), 0),
    ("temp view cast", lambda x: _temp_view_cast(x), 0),
    ("zeros partial", lambda x: _zeros_partial(x), 0),
    ("atomics", lambda x: _atomics(x), 0),
    ("setitem", lambda x: _setitem(x), 0),
    ("ctypes", lambda x: _fresh(lambda y: (_launch(_nothing, y), _host_relu(x, y))), 400),
    ("ctypes half", lambda x: _fresh(lambda y: (_launch(_relu, x, y, 200), _host_relu(x, y))), 200),
    ("copy kernel", lambda x: _laundered(x, lambda t, y: _launch(_copy, t, y, x.numel())), 400),
    ("clone", lambda x: _laundered(x, lambda t, y: y.copy_(t.clone())), 400),
    ("self copy", lambda x: _fresh(lambda y: (_host_relu(x, y), y.copy_(y))), 400),
    ("decoy", lambda x: _after_decoy(lambda y: (_launch(_nothing, y), _host_relu(x, y))), 400),
    ("stride 0", lambda x: torch.empty_strided((1 << 25,), (0,), dtype=torch.uint8), 1 << 25),
]


def _fresh(fill):
    y = torch.empty(8, 50)
    fill(y)
    return y


def _after_decoy(fill):
    # Past the tracked-memory budget storages go untracked: an output among them is reported.
    decoy = torch.empty(coverage.MAX_BYTES // 4 + 1)
    return decoy, _fresh(fill)


def _temp_view_cast(x):
    flat = torch.empty(x.numel(), dtype=torch.float64)
    _launch(_copy, x, flat.view(torch.float32)[: x.numel()], x.numel())  # the bytes, not values
    return flat.view(torch.float32)[: x.numel()].view(8, 50).to(torch.float16).float()


def _zeros_partial(x):
    y = torch.zeros(8, 50)
    _launch(_relu, x, y, 150)
    return y


def _atomics(x):
    y = torch.zeros(4)
    _launch(_scatter_add, x, y, x.numel())
    return y


def _setitem(x):
    y = torch.empty_like(x)
    _launch(_relu, x, y, x.numel())
    y[:, :3] = 0
    return y


def _laundered(x, copy):
    t = torch.empty_like(x)
    _host_relu(x, t)
    y = torch.empty_like(x)
    copy(t, y)
    return y


@case
def store_coverage():
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.utils.deterministic.fill_uninitialized_memory = True
    allowed = allowed_ops(())
    wrong = []
    for name, forward, expected in COVERAGE:
        x = torch.randn(8, 50)
        with torch.no_grad(), coverage.tracking(allowed, torch.nn.Module(), [x]) as tracker:
            out = forward(x)
        report = tracker.report([out[-1]] if isinstance(out, tuple) else [out])
        found = sum(u["elements"] for u in report["untracked"])
        if not report["checked"] or found != expected:
            wrong.append(f"{name}: {found} untracked, expected {expected} ({report['note']})")
    return not wrong or "; ".join(wrong)


@triton.jit
def _ptx(x_ptr):
    offs = tl.arange(0, 16)
    x = tl.load(x_ptr + offs)
    y = tl.inline_asm_elementwise(
        "mov.b32 $0, $1;", "=r,r", [x], dtype=tl.float32, is_pure=True, pack=1
    )
    tl.store(x_ptr + offs, y)


@case
def inline_ptx_is_reported_unsupported():
    try:
        _ptx[(1,)](torch.zeros(16))
    except Exception as exc:
        return bool(interpreter.unsupported_reason(exc)) or repr(exc)
    return "inline PTX ran under the interpreter"


if __name__ == "__main__":
    results = {}
    for name, fn in CASES.items():
        try:
            results[name] = fn()
        except Exception:
            results[name] = traceback.format_exc()[-1500:]
    json.dump({"triton": triton.__version__, "results": results}, sys.stdout)
