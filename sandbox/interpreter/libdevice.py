"""libdevice under the interpreter: the CUDA functions' own type tables, numpy arithmetic.

``triton.language.extra.libdevice`` holds stubs (``def tanh(arg0): ...``) that the GPU compiler
swaps for ``triton.language.extra.cuda.libdevice``; interpreted, a stub returns None and the
CUDA function, a builtin, has no semantic to run with. Here both names call the CUDA function
with the interpreter's semantic, so its table of argument types and result types (and its errors
for types CUDA has no symbol for) stay exactly as on a GPU, and the interpreter's builder gets a
``create_extern_elementwise`` that runs the chosen symbol (``__nv_tanhf``) on numpy.

Numbers come from numpy in the argument's precision, not from CUDA's libdevice: they agree to
within a few ulp for the functions below (rounding-mode variants ``_rz/_rd/_ru`` are computed
round-to-nearest). A symbol without an implementation raises NotImplementedError "... not
supported in interpreter mode", which the verdict reports as INTERPRETER_UNSUPPORTED.
"""

from __future__ import annotations

import math

import numpy as np


def _vectorized(fn):
    return np.vectorize(fn, otypes=[np.float64])


def _erf(x):
    return _vectorized(math.erf)(x).astype(x.dtype)


def _erfc(x):
    return _vectorized(math.erfc)(x).astype(x.dtype)


def _round_half_away(x):
    return np.copysign(np.floor(np.abs(x) + x.dtype.type(0.5)), x)


def _fma(x, y, z):
    # One rounding, like a fused multiply-add: exact in float64 for fp32 operands.
    wide = np.float64 if x.dtype != np.float64 else np.longdouble
    return (x.astype(wide) * y.astype(wide) + z.astype(wide)).astype(x.dtype)


# Base names, after "__nv_" and a rounding suffix are removed and aliases applied.
_UNARY = {
    "abs": np.abs,
    "fabs": np.abs,
    "floor": np.floor,
    "ceil": np.ceil,
    "trunc": np.trunc,
    "rint": np.rint,
    "nearbyint": np.rint,
    "round": _round_half_away,
    "exp": np.exp,
    "exp2": np.exp2,
    "exp10": lambda x: np.power(x.dtype.type(10), x),
    "expm1": np.expm1,
    "log": np.log,
    "log2": np.log2,
    "log10": np.log10,
    "log1p": np.log1p,
    "sqrt": np.sqrt,
    "rsqrt": lambda x: x.dtype.type(1) / np.sqrt(x),
    "rcp": lambda x: x.dtype.type(1) / x,
    "cbrt": np.cbrt,
    "rcbrt": lambda x: x.dtype.type(1) / np.cbrt(x),
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "asin": np.arcsin,
    "acos": np.arccos,
    "atan": np.arctan,
    "sinh": np.sinh,
    "cosh": np.cosh,
    "tanh": np.tanh,
    "asinh": np.arcsinh,
    "acosh": np.arccosh,
    "atanh": np.arctanh,
    "sinpi": lambda x: np.sin(x * x.dtype.type(np.pi)),
    "cospi": lambda x: np.cos(x * x.dtype.type(np.pi)),
    "erf": _erf,
    "erfc": _erfc,
    "normcdf": lambda x: (_erfc(-x / x.dtype.type(math.sqrt(2))) / 2).astype(x.dtype),
    "lgamma": lambda x: _vectorized(math.lgamma)(x).astype(x.dtype),
    "tgamma": lambda x: _vectorized(math.gamma)(x).astype(x.dtype),
    "saturate": lambda x: np.clip(x, 0, 1),
    "isnan": np.isnan,
    "isinf": np.isinf,
    "isfinite": np.isfinite,
    "signbit": np.signbit,
}
_BINARY = {
    "pow": np.power,
    "powi": lambda x, n: np.power(x, n.astype(x.dtype)),
    "atan2": np.arctan2,
    "hypot": np.hypot,
    "rhypot": lambda x, y: x.dtype.type(1) / np.hypot(x, y),
    "fmod": np.fmod,
    "remainder": lambda x, y: x - np.rint(x / y) * y,
    "copysign": np.copysign,
    "nextafter": np.nextafter,
    "fdim": lambda x, y: np.maximum(x - y, 0),
    "div": np.divide,
    "dividef": np.divide,
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "ldexp": lambda x, n: np.ldexp(x, n.astype(np.int32)),
    "scalbn": lambda x, n: np.ldexp(x, n.astype(np.int32)),
}
_TERNARY = {"fma": _fma}
# Symbols whose base name is not the function's: "__nv_fdiv_rn" -> "div", "__nv_isnand" -> ...
_ALIASES = {
    "fdiv": "div", "ddiv": "div", "fast_fdivide": "dividef", "fadd": "add", "dadd": "add",
    "fsub": "sub", "dsub": "sub", "fmul": "mul", "dmul": "mul", "frcp": "rcp", "drcp": "rcp",
    "fsqrt": "sqrt", "dsqrt": "sqrt", "frsqrt": "rsqrt", "isnand": "isnan", "isinfd": "isinf",
    "finite": "isfinite", "isfinited": "isfinite", "signbitd": "signbit", "llabs": "abs",
}  # fmt: skip
_ALL = {**_UNARY, **_BINARY, **_TERNARY}


def implementation(symbol: str):
    """The numpy function for a CUDA libdevice symbol; NotImplementedError if there is none."""
    name = symbol.removeprefix("__nv_")
    for suffix in ("_rn", "_rz", "_rd", "_ru"):
        name = name.removesuffix(suffix)
    name = name.removeprefix("fast_")
    for candidate in (name, name.removesuffix("f")):
        candidate = _ALIASES.get(candidate, candidate)
        if candidate in _ALL:
            return _ALL[candidate]
    raise NotImplementedError(
        f"libdevice {symbol} is not supported in interpreter mode (kernelloop has no CPU "
        "implementation of it)"
    )


def install(ti, patch, with_semantic) -> None:
    import triton.language.extra.libdevice as stubs
    from triton.language.extra.cuda import libdevice as cuda

    def extern_elementwise(self, lib_name, lib_path, symbol, args, ret_type, is_pure):
        impl = implementation(symbol)
        scalar = ret_type.scalar
        with np.errstate(all="ignore"):  # log(-1) is NaN on a GPU too, without a warning
            out = np.asarray(impl(*[a.data for a in args]))
        return ti.TensorHandle(out.astype(ti._get_np_dtype(scalar), copy=False), scalar)

    patch(ti.InterpreterBuilder, "create_extern_elementwise", extern_elementwise)
    semantic = ti.interpreter_semantic
    for name, fn in list(vars(cuda).items()):
        if not getattr(fn, "__triton_builtin__", False):
            continue
        wrapped = with_semantic(fn, semantic)
        patch(cuda, name, wrapped)
        if callable(getattr(stubs, name, None)):
            patch(stubs, name, wrapped)
