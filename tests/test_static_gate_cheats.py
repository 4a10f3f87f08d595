"""Static gate: each cheat is caught with the code that names it (one small source per code)."""

from __future__ import annotations

import pytest
from gate_sources import HONEST_CUDA, HONEST_INLINE, candidate

from kernelloop.sandbox import reasons
from kernelloop.sandbox.static_gate import check_source

NO_LAUNCH_CUDA = HONEST_CUDA.replace(
    "self.kernel(((n + threads - 1) // threads,), (threads,), x, y, n, shared_mem=0)", "y.zero_()"
)
NO_CALL_INLINE = HONEST_INLINE.replace("return self.ext.relu_cuda(x)", "return torch.empty_like(x)")
INLINE_ATEN = HONEST_INLINE.replace("auto y = torch::empty_like(x);", "return at::relu(x);")

CHEATS = [
    # NO_MODELNEW / NO_KERNEL / KERNEL_NOT_LAUNCHED (row 9)
    ("no-modelnew", candidate().replace("class ModelNew", "class Solution"), reasons.NO_MODELNEW),
    (
        "no-kernel",
        "import torch.nn as nn\nclass ModelNew(nn.Module):\n    def forward(self, x):\n"
        "        return x\n",
        reasons.NO_KERNEL,
    ),
    (
        "triton-never-launched",
        candidate().replace("_copy_kernel[(triton.cdiv(x.numel(), 1024),)]", "print"),
        reasons.KERNEL_NOT_LAUNCHED,
    ),
    ("cuda-kernel-never-called", NO_LAUNCH_CUDA, reasons.KERNEL_NOT_LAUNCHED),
    ("inline-module-never-called", NO_CALL_INLINE, reasons.KERNEL_NOT_LAUNCHED),
    # TORCH_COMPUTE (row 9)
    ("torch.matmul", candidate("return torch.matmul(x, w)"), reasons.TORCH_COMPUTE),
    (
        "F.relu",
        candidate("return torch.nn.functional.relu(x)", "import torch.nn.functional as F"),
        reasons.TORCH_COMPUTE,
    ),
    (
        "F-alias",
        candidate("return F.softmax(x, dim=-1)", "import torch.nn.functional as F"),
        reasons.TORCH_COMPUTE,
    ),
    ("tensor.sum", candidate("return launch(x).sum(dim=0)"), reasons.TORCH_COMPUTE),
    ("tensor.add_", candidate("y = launch(x)\ny.add_(1)\nreturn y"), reasons.TORCH_COMPUTE),
    ("at-operator", candidate("return x @ w"), reasons.TORCH_COMPUTE),
    ("nn-module-call", candidate("return self.linear(x)"), reasons.TORCH_COMPUTE),
    ("nn-module-forward", candidate("return self.linear.forward(x)"), reasons.TORCH_COMPUTE),
    ("nn-module-via-local", candidate("lin = self.linear\nreturn lin(x)"), reasons.TORCH_COMPUTE),
    (
        "nn-class-method",
        candidate("return nn.Linear.forward(self.linear, x)"),
        reasons.TORCH_COMPUTE,
    ),
    ("torch.special", candidate("return torch.special.expit(x)"), reasons.TORCH_COMPUTE),
    ("torch.compile", candidate("return torch.compile(launch)(x)"), reasons.TORCH_COMPUTE),
    (
        "cuda-graph",
        candidate("g = torch.cuda.CUDAGraph()\nreturn launch(x)"),
        reasons.TORCH_COMPUTE,
    ),
    ("aliased-op", candidate("return mm(x, w)", "mm = torch.matmul"), reasons.TORCH_COMPUTE),
    (
        "imported-op",
        candidate("return matmul(x, w)", "from torch import matmul"),
        reasons.TORCH_COMPUTE,
    ),
    ("getattr-op", candidate("return getattr(x, 'relu')()"), reasons.TORCH_COMPUTE),
    (
        "nn-modulelist-loop",
        candidate("for layer in self.layers:\n    x = layer(x)\nreturn x").replace(
            "self.linear = nn.Linear(4, 4)", "self.layers = nn.ModuleList([nn.Linear(4, 4)])"
        ),
        reasons.TORCH_COMPUTE,
    ),
    ("nn.functional-via-nn", candidate("return nn.functional.gelu(x)"), reasons.TORCH_COMPUTE),
    (
        "param-shadows-module",
        candidate("return math.exp()").replace("w=None", "math=None"),
        reasons.TORCH_COMPUTE,
    ),
    (
        "torch-in-jit",
        candidate().replace("tl.load(x_ptr + offs", "torch.relu(x_ptr + offs"),
        reasons.TORCH_COMPUTE,
    ),
    ("aten-in-inline", INLINE_ATEN, reasons.TORCH_COMPUTE),
    (
        "cublas-in-inline",
        HONEST_INLINE.replace("int n = x.numel();", "cublasSgemm(h, 0, 0, 1, 1, 1);"),
        reasons.TORCH_COMPUTE,
    ),
    # EXCEPTION_FALLBACK (row 10)
    (
        "try-except",
        candidate("try:\n    return launch(x)\nexcept Exception:\n    return torch.relu(x)"),
        reasons.EXCEPTION_FALLBACK,
    ),
    (
        "contextlib.suppress",
        candidate(
            "with suppress(Exception):\n    return launch(x)", "from contextlib import suppress"
        ),
        reasons.EXCEPTION_FALLBACK,
    ),
    (
        "swallowing-__exit__",
        candidate(prelude="class Quiet:\n    def __exit__(self, *a):\n        return True\n"),
        reasons.EXCEPTION_FALLBACK,
    ),
    # INHERITS_REFERENCE (row 11)
    (
        "inherits-Model",
        candidate().replace("class ModelNew(nn.Module)", "class ModelNew(Model)"),
        reasons.INHERITS_REFERENCE,
    ),
    (
        "inherits-unknown",
        candidate().replace("ModelNew(nn.Module)", "ModelNew(nn.Module, Base)"),
        reasons.INHERITS_REFERENCE,
    ),
    (
        "metaclass",
        candidate().replace("ModelNew(nn.Module)", "ModelNew(nn.Module, metaclass=M)"),
        reasons.INHERITS_REFERENCE,
    ),
    # THREADS (row 4)
    (
        "threading",
        candidate(
            "threading.Thread(target=launch, args=(x,)).start()\nreturn torch.empty_like(x)",
            "import threading",
        ),
        reasons.THREADS,
    ),
    (
        "concurrent.futures",
        candidate(
            "return ThreadPoolExecutor(1).submit(launch, x).result()",
            "from concurrent.futures import ThreadPoolExecutor",
        ),
        reasons.THREADS,
    ),
    (
        "torch.multiprocessing",
        candidate("torch.multiprocessing.Process(target=launch).start()\nreturn launch(x)"),
        reasons.THREADS,
    ),
    ("async-def", candidate(prelude="async def later(x):\n    return x\n"), reasons.THREADS),
    # STREAMS (row 3)
    (
        "cuda.Stream",
        candidate("s = torch.cuda.Stream()\nwith torch.cuda.stream(s):\n    return launch(x)"),
        reasons.STREAMS,
    ),
    (
        "stream-kwarg",
        candidate("return _copy_kernel[(1,)](x, x, 1, BLOCK=1, stream=7)"),
        reasons.STREAMS,
    ),
    (
        "cudaStreamCreate",
        HONEST_CUDA.replace("long i =", "cudaStream_t s; cudaStreamCreate(&s); long i ="),
        reasons.STREAMS,
    ),
    # TIMER_PATCH (row 6)
    (
        "patch-synchronize",
        candidate(prelude="torch.cuda.synchronize = lambda: None"),
        reasons.TIMER_PATCH,
    ),
    (
        "patch-elapsed_time",
        candidate(prelude="torch.cuda.Event.elapsed_time = lambda s, e: 0.0"),
        reasons.TIMER_PATCH,
    ),
    (
        "setattr-torch",
        candidate(prelude="setattr(torch.cuda, 'synchronize', print)"),
        reasons.TIMER_PATCH,
    ),
    (
        "patch-imported-name",
        candidate(prelude="from torch.cuda import Event\nEvent.elapsed_time = lambda s, e: 0.0"),
        reasons.TIMER_PATCH,
    ),
    # TIMER_PATCH (row 24): objects the candidate did not create, however they were reached
    ("set-attr-of-type", candidate("type(x).relu = print\nreturn launch(x)"), reasons.TIMER_PATCH),
    (
        "set-attr-through-subscript",
        candidate(prelude="[torch.Tensor][0].relu = print"),
        reasons.TIMER_PATCH,
    ),
    (
        "set-attr-of-local-class",
        candidate("cls = x.new_empty(1)\ncls.relu = print\nreturn launch(x)"),
        reasons.TIMER_PATCH,
    ),
    (
        "setattr-on-parameter",
        candidate(prelude="def off(m):\n    setattr(m, 'note', print)\n"),
        reasons.TIMER_PATCH,
    ),
    # FORBIDDEN_MODULE (row 23): a module outside the allowlist reached through an allowed one
    (
        "torch.sys.modules",
        candidate(prelude="g = torch.sys.modules['gc']"),
        reasons.FORBIDDEN_MODULE,
    ),
    (
        "torch.os.write",
        candidate("torch.os.write(2, b'x')\nreturn launch(x)"),
        reasons.FORBIDDEN_MODULE,
    ),
    ("torch.builtins.open", candidate(prelude="f = torch.builtins.open"), reasons.FORBIDDEN_MODULE),
    (
        "torch.importlib",
        candidate(prelude="m = torch.importlib.import_module('ctypes')"),
        reasons.FORBIDDEN_MODULE,
    ),
    ("typing.sys", candidate(prelude="import typing\ns = typing.sys"), reasons.FORBIDDEN_MODULE),
    (
        "F.np",
        candidate(prelude="import torch.nn.functional as F\nn = F.np"),
        reasons.FORBIDDEN_MODULE,
    ),
    (
        "nvrtc-ctypes",
        candidate(prelude="import kernelloop.sandbox.nvrtc as nv\nc = nv.ctypes"),
        reasons.FORBIDDEN_MODULE,
    ),
    (
        "kernelloop-guards",
        candidate(prelude="import kernelloop.sandbox.nvrtc\ng = kernelloop.sandbox.guards"),
        reasons.FORBIDDEN_MODULE,
    ),
    (
        "module-in-a-container",
        candidate(prelude="mods = [torch]\ns = mods[0].sys"),
        reasons.FORBIDDEN_MODULE,
    ),
    (
        "module-as-default",
        candidate(prelude="def f(t=torch):\n    return t\n"),
        reasons.FORBIDDEN_MODULE,
    ),
    (
        "escape-name-after-call",
        candidate(prelude="def f():\n    return (lambda: 0)().os\n"),
        reasons.FORBIDDEN_MODULE,
    ),
    (
        "getattr-escape-name",
        candidate(prelude="def f(m):\n    return getattr(m, '_sys')\n"),
        reasons.FORBIDDEN_MODULE,
    ),
    (
        "enum-builtins",
        candidate(prelude="import enum\nb = enum.bltns"),
        reasons.FORBIDDEN_MODULE,
    ),
    # found by a white-box attacker: strings evaluated by allowed modules, private members,
    # names the interpreter slips into the module, classes handed to methods as `self`
    (
        "typing-forwardref-eval",
        candidate(prelude="import typing\nr = typing.ForwardRef('int')"),
        reasons.FORBIDDEN_MODULE,
    ),
    (
        "private-member",
        candidate(prelude="import typing\ndef f(r):\n    return r._evaluate({}, {})\n"),
        reasons.INTROSPECTION,
    ),
    (
        "interpreter-injected-names",
        candidate("a = _interpreter.load(np.arange(4))\nreturn launch(x)"),
        reasons.DYNAMIC_CODE,
    ),
    (
        "library-class-passed-as-self",
        candidate(
            "Box.put(torch.Tensor, print)\nreturn launch(x)",
            prelude="class Box:\n    def put(tgt, fn):\n        tgt.detach = fn\n",
        ),
        reasons.DYNAMIC_CODE,
    ),
    (
        "dunder-string-key",
        candidate("b = _copy_kernel.get_capture_scope()['__builtins__']\nreturn launch(x)"),
        reasons.INTROSPECTION,
    ),
    (
        "def-line-in-kernel-docstring",
        candidate(
            prelude='@triton.jit\ndef _k(x_ptr):\n    """\n    def _k(x_ptr):\n'
            '        pass\n    """\n    tl.store(x_ptr, 0.0)\n'
        ),
        reasons.DYNAMIC_CODE,
    ),
    (
        "triton-jitfunction",
        candidate(prelude="from triton.runtime.jit import JITFunction"),
        reasons.FORBIDDEN_IMPORT,
    ),
    ("triton.JITFunction", candidate(prelude="J = triton.JITFunction"), reasons.FORBIDDEN_MODULE),
    (
        "capture-scope",
        candidate("g = _copy_kernel.get_capture_scope()\nreturn launch(x)"),
        reasons.INTROSPECTION,
    ),
    (
        "interpreter-handle-in-kernel",
        candidate(
            prelude="@triton.jit\ndef _k(x_ptr):\n    v = tl.load(x_ptr)\n"
            "    v.handle.data[:] = 0\n    tl.store(x_ptr, v)\n"
        ),
        reasons.INTROSPECTION,
    ),
    # HOST_READS_VALUES (row 26): the host never reads tensor values
    ("item", candidate("s = x.sum_of = x.item()\nreturn launch(x)"), reasons.HOST_READS_VALUES),
    ("tolist", candidate("v = x.tolist()\nreturn launch(x)"), reasons.HOST_READS_VALUES),
    ("numpy", candidate("v = x.numpy()\nreturn launch(x)"), reasons.HOST_READS_VALUES),
    ("storage", candidate("v = x.untyped_storage()\nreturn launch(x)"), reasons.HOST_READS_VALUES),
    ("memoryview", candidate("v = memoryview(b'')\nreturn launch(x)"), reasons.HOST_READS_VALUES),
    # TENSOR_SUBCLASS (row 5)
    (
        "tensor-subclass",
        candidate(prelude="class Lazy(torch.Tensor):\n    pass\n"),
        reasons.TENSOR_SUBCLASS,
    ),
    (
        "__torch_function__",
        candidate(
            prelude="class Box:\n    @classmethod\n"
            "    def __torch_function__(cls, f, t, a=(), k=None):\n"
            "        return f(*a)\n"
        ),
        reasons.TENSOR_SUBCLASS,
    ),
    (
        "torch._C",
        candidate("torch._C._set_grad_enabled(False)\nreturn launch(x)"),
        reasons.TENSOR_SUBCLASS,
    ),
    (
        "dispatch-mode",
        candidate(prelude="from torch.utils._python_dispatch import TorchDispatchMode"),
        reasons.TENSOR_SUBCLASS,
    ),
    (
        "_make_subclass",
        candidate("return torch.Tensor._make_subclass(torch.Tensor, launch(x))"),
        reasons.TENSOR_SUBCLASS,
    ),
    # FORBIDDEN_IMPORT (row 14)
    ("import-os", candidate(prelude="import os"), reasons.FORBIDDEN_IMPORT),
    ("import-numpy", candidate(prelude="import numpy as np"), reasons.FORBIDDEN_IMPORT),
    ("import-time", candidate(prelude="import time"), reasons.FORBIDDEN_IMPORT),
    (
        "from-importlib",
        candidate(prelude="from importlib import import_module"),
        reasons.FORBIDDEN_IMPORT,
    ),
    ("star-import", candidate(prelude="from torch import *"), reasons.FORBIDDEN_IMPORT),
    ("relative-import", candidate(prelude="from . import reference"), reasons.FORBIDDEN_IMPORT),
    # DYNAMIC_CODE (row 14)
    ("exec", candidate(prelude="exec('import os')"), reasons.DYNAMIC_CODE),
    ("eval", candidate("return eval('launch')(x)"), reasons.DYNAMIC_CODE),
    ("__import__", candidate(prelude="os = __import__('os')"), reasons.DYNAMIC_CODE),
    # getattr and friends may be called, never renamed or passed (row 23)
    ("getattr-alias", candidate(prelude="ga = getattr"), reasons.DYNAMIC_CODE),
    (
        "getattr-default",
        candidate(prelude="def f(o, n, ga=getattr):\n    return ga(o, n)\n"),
        reasons.DYNAMIC_CODE,
    ),
    (
        "getattr-reduce",
        candidate(prelude="import functools\nf = functools.reduce(getattr, ['sys'], torch)"),
        reasons.DYNAMIC_CODE,
    ),
    ("type-as-value", candidate(prelude="t = type"), reasons.DYNAMIC_CODE),
    ("type-of-call-result", candidate("c = type(x)\nreturn launch(x)"), reasons.DYNAMIC_CODE),
    (
        "get-type-hints",
        candidate(prelude="import typing\nh = typing.get_type_hints(print)"),
        reasons.DYNAMIC_CODE,
    ),
    (
        "getattr-computed",
        candidate("name = 'mat' + 'mul'\nreturn getattr(torch, name)(x, w)"),
        reasons.DYNAMIC_CODE,
    ),
    ("globals", candidate("return globals()['launch'](x)"), reasons.DYNAMIC_CODE),
    # FILE_ACCESS (rows 7, 14)
    (
        "open",
        candidate("open('/tmp/cache', 'w').write('1')\nreturn launch(x)"),
        reasons.FILE_ACCESS,
    ),
    ("torch.load", candidate("return torch.load('/tmp/answer.pt')"), reasons.FILE_ACCESS),
    (
        "pathlib",
        candidate("Path('ref.py').read_text()\nreturn launch(x)", "from pathlib import Path"),
        reasons.FILE_ACCESS,
    ),
    (
        "fopen-in-cuda",
        HONEST_CUDA.replace("long i =", 'FILE* f = fopen("/tmp/x", "r"); long i ='),
        reasons.FILE_ACCESS,
    ),
    # INTROSPECTION (row 14)
    ("__class__", candidate("return launch(x).__class__(x)"), reasons.INTROSPECTION),
    ("__globals__", candidate("return launch.__globals__['launch'](x)"), reasons.INTROSPECTION),
    (
        "frame-walk",
        candidate("f = sys._getframe(1).f_back.f_locals\nreturn launch(x)", "import sys"),
        reasons.INTROSPECTION,
    ),
    (
        "__subclasses__",
        candidate("nn.Module.__subclasses__()\nreturn launch(x)"),
        reasons.INTROSPECTION,
    ),
]


@pytest.mark.parametrize(("source", "code"), [c[1:] for c in CHEATS], ids=[c[0] for c in CHEATS])
def test_cheat_is_caught(source, code):
    result = check_source(source)
    assert code in result.codes, result.findings
    assert not result.ok
    for finding in result.findings:
        assert finding.code in reasons.STATIC_CODES and finding.message


def test_every_static_code_has_a_cheat():
    assert {c[2] for c in CHEATS} | {reasons.SYNTAX_ERROR} == set(reasons.STATIC_CODES)


# --- honest idioms of real projects that the gate must not reject -------------------------------
HONEST_IDIOMS = [
    (
        "libdevice-import-fallback",
        candidate(
            prelude="try:\n    from triton.language.extra.libdevice import rsqrt\n"
            "except ModuleNotFoundError:\n    from triton.language.extra.cuda.libdevice import "
            "rsqrt\n"
        ),
    ),
    ("runtime-driver", candidate(prelude="from triton.runtime import driver\nD = driver.active")),
    ("isinstance-torch-type", candidate("assert isinstance(x, torch.Tensor)\nreturn launch(x)")),
    ("type-compared", candidate("assert type(x) is torch.Tensor\nreturn launch(x)")),
    ("module-alias", candidate(prelude="tlang = triton.language\nF32 = tlang.float32")),
    (
        "autograd-function-with-ctx",
        candidate(
            "return _Copy.apply(x)",
            prelude="class _Copy(torch.autograd.Function):\n    @staticmethod\n"
            "    def forward(ctx, x):\n        ctx.n = x.numel()\n        return launch(x)\n",
        ),
    ),
    ("attribute-on-self", candidate("self.calls = 1\nreturn launch(x)")),
    ("getattr-on-self", candidate("k = getattr(self, 'cache', None)\nreturn launch(x)")),
    ("data-ptr-alignment", candidate("assert x.data_ptr() % 16 == 0\nreturn launch(x)")),
    (
        "python-container-methods",
        candidate("seen = set()\nseen.add(1)\nsizes = [3, 1]\nsizes.sort()\nreturn launch(x)"),
    ),
    (
        "own-instance-attribute",
        candidate(
            "cfg = Cfg()\ncfg.block = 1024\nreturn launch(x)", prelude="class Cfg:\n    pass\n"
        ),
    ),
    (
        "typing-in-annotations",
        candidate(
            prelude="from typing import Optional\ndef f(t: Optional[torch.Tensor]) -> int:"
            "\n    return 0\n"
        ),
    ),
    ("main-guard", candidate(prelude="if __name__ == '__main__':\n    pass\n")),
]


@pytest.mark.parametrize("source", [c[1] for c in HONEST_IDIOMS], ids=[c[0] for c in HONEST_IDIOMS])
def test_honest_idiom_passes(source):
    result = check_source(source)
    assert result.ok, result.findings


def test_unused_helper_kernel_is_a_note_not_a_rejection():
    result = check_source(candidate(prelude="@triton.jit\ndef _helper(a):\n    return a\n"))
    assert result.ok, result.findings
    assert any("_helper is never launched" in n for n in result.notes)


def test_try_that_does_more_than_import_is_still_a_fallback():
    source = candidate(
        prelude="try:\n    from triton.language.extra.libdevice import rsqrt\n"
        "except Exception:\n    rsqrt = None\n"
    )
    assert reasons.EXCEPTION_FALLBACK in check_source(source).codes


def test_long_rename_chains_are_refused_quickly():
    """3,000 chained renames made the gate's fixpoint take 80 s (found by an attacker)."""
    import time

    chain = "\n".join(f"a{i} = a{i - 1}" for i in range(3000, 0, -1)) + "\na0 = _copy_kernel\n"
    started = time.perf_counter()
    result = check_source(candidate(prelude=chain))
    assert reasons.SYNTAX_ERROR in result.codes
    assert time.perf_counter() - started < 20


def test_escape_names_spare_tensor_methods():
    """`.select` on a tensor was refused as the module `select` (the builtin coder's attention
    kernels call it): a name is an escape only if no tensor method has it."""
    import torch

    from kernelloop.sandbox import gate_reach

    assert not (gate_reach.escape_attrs() & set(dir(torch.Tensor))) - {"numpy", "_python_dispatch"}
    assert check_source(candidate("y = launch(x)\nreturn y.select(0, 0)")).ok


def test_huge_sources_are_refused_before_the_walk():
    """A 1 MiB source of 100,000 native-looking lines held the orchestrator for 245 s."""
    import time

    huge = candidate(prelude='CPP = """torch::empty(1);\n""" + "x"\n' + "# pad\n" * 60000)
    started = time.perf_counter()
    result = check_source(huge)
    assert result.codes == {reasons.SYNTAX_ERROR}
    assert "KiB" in result.findings[0].message
    assert time.perf_counter() - started < 5


def test_findings_per_code_are_capped():
    lines = "\n".join(f"v{i} = x.tolist()" for i in range(200))
    result = check_source(candidate(lines + "\nreturn launch(x)"))
    assert 0 < sum(f.code == reasons.HOST_READS_VALUES for f in result.findings) <= 20


def test_escape_names_are_only_dangerous_modules_whatever_was_imported():
    """`.debug` once became an escape name after the test session imported a private torch
    module called `debug` (logger.debug was refused in CI): the set is built from the dangerous
    modules alone, after importing every allowed module itself."""
    import torch._inductor.debug  # noqa: F401  (a private module bound as `debug`)

    from kernelloop.sandbox import gate_reach

    gate_reach.escape_attrs.cache_clear()
    names = gate_reach.escape_attrs()
    assert not names & {"debug", "info", "warning", "data", "utils", "select", "config"}
    assert {"os", "sys", "bltns", "_sys"} <= names
