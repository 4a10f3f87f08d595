"""Static gate: honest candidates pass, and each cheat is caught with the code that names it."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

from kernelloop.sandbox import reasons
from kernelloop.sandbox.static_gate import Finding, GateResult, check_source, detect_backend

HONEST_TRITON = """
import math
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def _bias_relu(v, b):
    return tl.maximum(v + b, 0.0)


@triton.autotune(configs=[triton.Config({"BLOCK_N": 64}, num_warps=4)], key=["N", "K"])
@triton.jit
def _linear_relu_kernel(x_ptr, w_ptr, b_ptr, y_ptr, M, N, K, BLOCK_N: tl.constexpr,
                        BLOCK_K: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    acc = tl.zeros((BLOCK_N,), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        ks = k0 + tl.arange(0, BLOCK_K)
        x = tl.load(x_ptr + row * K + ks, mask=ks < K, other=0.0)
        w = tl.load(w_ptr + cols[:, None] * K + ks[None, :],
                    mask=(cols[:, None] < N) & (ks[None, :] < K), other=0.0)
        acc += tl.sum(w * x[None, :], axis=1)
    b = tl.load(b_ptr + cols, mask=cols < N, other=0.0)
    tl.store(y_ptr + row * N + cols, _bias_relu(acc, b).to(tl.float32), mask=cols < N)


class ModelNew(nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.scale = nn.Parameter(torch.ones(out_features))
        nn.init.kaiming_uniform_(self.linear.weight, a=math.sqrt(5))

    def forward(self, x):
        x = x.contiguous().view(-1, x.shape[-1]).to(torch.float32)
        M, K = x.shape
        N = self.linear.weight.shape[0]
        y = torch.empty((M, N), device=x.device, dtype=x.dtype)
        grid = lambda meta: (M, triton.cdiv(N, meta["BLOCK_N"]))
        _linear_relu_kernel[grid](x, self.linear.weight, self.linear.bias, y, M, N, K, BLOCK_K=32)
        return y.view(*x.shape[:-1], N)
"""

HONEST_CUDA = '''
import torch
import torch.nn as nn
from kernelloop.sandbox.nvrtc import load_kernel

_SOURCE = r"""
extern "C" __global__ void relu_kernel(const float* x, float* y, long n) {
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = x[i] > 0.f ? x[i] : 0.f;
}
"""


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.kernel = load_kernel(_SOURCE, "relu_kernel")

    def forward(self, x):
        x = x.contiguous()
        y = torch.empty_like(x)
        n = x.numel()
        threads = 256
        self.kernel(((n + threads - 1) // threads,), (threads,), x, y, n, shared_mem=0)
        return y
'''

HONEST_INLINE = '''
import torch
import torch.nn as nn
from torch.utils.cpp_extension import load_inline

cuda_src = """
#include <torch/extension.h>
__global__ void relu_kernel(const float* x, float* y, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = fmaxf(x[i], 0.f);
}
torch::Tensor relu_cuda(torch::Tensor x) {
    auto y = torch::empty_like(x);
    int n = x.numel();
    relu_kernel<<<(n + 255) / 256, 256>>>(x.data_ptr<float>(), y.data_ptr<float>(), n);
    return y;
}
"""
cpp_src = "torch::Tensor relu_cuda(torch::Tensor x);"
relu_ext = load_inline(name="relu_ext", cpp_sources=cpp_src, cuda_sources=cuda_src,
                       functions=["relu_cuda"], verbose=False)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.ext = relu_ext

    def forward(self, x):
        return self.ext.relu_cuda(x)
'''

# An honest Triton candidate whose forward body and module prelude the cheats below replace.
TEMPLATE = """
import torch
import torch.nn as nn
import triton
import triton.language as tl
{prelude}

@triton.jit
def _copy_kernel(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(y_ptr + offs, tl.load(x_ptr + offs, mask=offs < n), mask=offs < n)


def launch(x):
    y = torch.empty_like(x)
    _copy_kernel[(triton.cdiv(x.numel(), 1024),)](x, y, x.numel(), BLOCK=1024)
    return y


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 4)

    def forward(self, x, w=None):
{body}
"""


def candidate(body: str = "return launch(x)", prelude: str = "") -> str:
    body = textwrap.indent(textwrap.dedent(body).strip(), " " * 8)
    return TEMPLATE.format(prelude=textwrap.dedent(prelude), body=body)


def codes(source: str, **kwargs) -> set[str]:
    return {f.code for f in check_source(source, **kwargs).findings}


# --- honest candidates ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("source", "backend"),
    [
        (HONEST_TRITON, "triton"),
        (HONEST_CUDA, "cuda"),
        (HONEST_INLINE, "cuda-inline"),
        (candidate(), "triton"),
    ],
    ids=["triton", "cuda", "cuda-inline", "template"],
)
def test_honest_candidate_passes(source, backend):
    result = check_source(source)
    assert result.findings == ()
    assert result.ok
    assert result.backend == backend
    assert detect_backend(source) == backend


def test_detection_order_prefers_load_inline():
    assert detect_backend(HONEST_INLINE + HONEST_TRITON) == "cuda-inline"
    assert detect_backend("x = 1") is None
    assert detect_backend("def f(:") is None


def test_forced_backend_needs_its_markers():
    assert check_source(HONEST_TRITON, backend="triton").ok
    result = check_source(HONEST_TRITON, backend="cuda")
    assert result.backend == "cuda"
    assert reasons.NO_KERNEL in result.codes
    with pytest.raises(ValueError):
        check_source(HONEST_TRITON, backend="opencl")


def test_syntax_error_reports_its_line():
    result = check_source("import torch\n\nclass ModelNew(nn.Module):\n    def forward(self x):\n")
    assert result.codes == {reasons.SYNTAX_ERROR}
    assert result.findings[0].line == 4
    assert result.backend is None


@pytest.mark.parametrize("terms", [500, 5000])
def test_absurdly_deep_source_is_rejected_not_crashed(terms):
    result = check_source(candidate("return launch(" + "+".join(["x"] * terms) + ")"))
    assert result.codes == {reasons.SYNTAX_ERROR}


def test_to_dict_and_message():
    result = check_source(candidate("return torch.matmul(x, w)"))
    d = result.to_dict()
    assert d["ok"] is False and d["backend"] == "triton"
    (hit,) = [f for f in result.findings if f.code == reasons.TORCH_COMPUTE]
    assert isinstance(hit, Finding) and "torch.matmul" in hit.message
    assert "ALLOW_TORCH" in hit.message
    assert hit.to_dict() == {"code": hit.code, "message": hit.message, "line": hit.line}
    assert isinstance(result, GateResult)


def test_finding_line_points_at_the_call():
    source = candidate("y = launch(x)\nreturn torch.matmul(y, w)")
    line = source.splitlines().index("        return torch.matmul(y, w)") + 1
    (hit,) = [f for f in check_source(source).findings if f.code == reasons.TORCH_COMPUTE]
    assert hit.line == line


def test_findings_are_deduplicated_per_code_and_line():
    result = check_source(candidate("return torch.relu(torch.relu(launch(x)))"))
    assert [f.code for f in result.findings] == [reasons.TORCH_COMPUTE]


# --- ALLOW_TORCH ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "allow"),
    [
        ("return torch.matmul(launch(x), w)", ["matmul"]),
        ("return launch(x) @ w", ["matmul"]),
        ("return torch.nn.functional.linear(launch(x), w)", ["matmul"]),
        ("return launch(x).mm(w)", ["matmul"]),
        ("return self.linear(launch(x))", ["matmul"]),
        ("return torch.conv2d(launch(x), w)", ["conv2d"]),
    ],
    ids=["torch.matmul", "at-operator", "F.linear", "tensor.mm", "nn.Linear-call", "conv2d"],
)
def test_allow_torch_permits_named_ops(body, allow):
    assert reasons.TORCH_COMPUTE in codes(candidate(body))
    assert check_source(candidate(body), allow_torch=allow).ok


def test_allow_torch_conv2d_permits_nn_conv2d_but_not_relu():
    source = candidate(
        "return torch.relu(self.conv(launch(x)))",
    ).replace("nn.Linear(4, 4)", "nn.Linear(4, 4)\n        self.conv = nn.Conv2d(3, 3, 3)")
    assert reasons.TORCH_COMPUTE in codes(source)
    hits = check_source(source, allow_torch=["conv2d"]).findings
    assert [f.code for f in hits] == [reasons.TORCH_COMPUTE] and "torch.relu" in hits[0].message


# --- cheats: one small source per code ------------------------------------------------------------
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
    (
        "triton-helper-never-called",
        candidate(prelude="@triton.jit\ndef _helper(a):\n    return a\n"),
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


# --- things that must not be flagged --------------------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [
        "y = launch(x.contiguous().view(-1).to(torch.float16))\nreturn y.reshape(x.shape)",
        "n = x.shape[0] * x.stride(0) + x.numel() + x.dim() + x.size(-1)\nreturn launch(x)",
        "y = torch.zeros(3, device=x.device, dtype=torch.float32)\nreturn launch(x.permute(1, 0))",
        "info = torch.finfo(x.dtype)\nreturn launch(x.transpose(0, 1).unsqueeze(0).squeeze(0))",
        "kernel = _copy_kernel\ny = torch.empty_like(x)\nkernel[(1,)](x, y, x.numel(), BLOCK=1024)"
        "\nreturn y",
        "w = self.linear.weight.t().contiguous()\nreturn launch(w)",
        "return launch(x.half().float())",
    ],
    ids=[
        "views-and-casts",
        "shape-queries",
        "allocation",
        "finfo",
        "kernel-variable",
        "module-params",
        "half-float",
    ],
)
def test_host_glue_is_allowed(body):
    assert check_source(candidate(body)).findings == ()


NO_DIRECT_LAUNCH = "_copy_kernel[(triton.cdiv(x.numel(), 1024),)]"


@pytest.mark.parametrize("passed", [True, False], ids=["kernel-passed", "kernel-not-passed"])
def test_kernel_launched_through_helper_parameter(passed):
    source = candidate(
        "return run(_copy_kernel, x)" if passed else "return run(None, x)",
        prelude="def run(kernel, x):\n    y = torch.empty_like(x)\n"
        "    kernel[(1,)](x, y, x.numel(), BLOCK=1024)\n    return y\n",
    ).replace(NO_DIRECT_LAUNCH, "print")
    assert check_source(source).ok is passed


@pytest.mark.parametrize(
    "body",
    [
        "k = _copy_kernel[(1,)]\ny = torch.empty_like(x)\nk(x, y, 1, BLOCK=4)\nreturn y",
        "ks = {'a': _copy_kernel}\ny = torch.empty_like(x)\n"
        "ks['a'][(1,)](x, y, 1, BLOCK=4)\nreturn y",
        "y = torch.empty_like(x)\n_copy_kernel.run(x, y, 1, BLOCK=4, grid=(1,))\nreturn y",
    ],
    ids=["bound-grid", "dict-of-kernels", "run-method"],
)
def test_kernel_launch_forms(body):
    assert check_source(candidate(body).replace(NO_DIRECT_LAUNCH, "print")).ok


def test_cuda_kernel_from_a_cached_factory_counts_as_launched():
    source = HONEST_CUDA.replace(
        "class ModelNew",
        "@functools.lru_cache(None)\ndef _get():\n"
        '    return load_kernel(_SOURCE, "relu_kernel")\n\n\nclass ModelNew',
    ).replace("import torch\n", "import functools\nimport torch\n", 1)
    source = source.replace('self.kernel = load_kernel(_SOURCE, "relu_kernel")', "pass")
    assert check_source(source.replace("self.kernel(", "_get()(")).ok
    assert reasons.KERNEL_NOT_LAUNCHED in codes(source.replace("self.kernel(", "print("))


def test_inline_function_named_like_a_torch_op_is_not_compute():
    source = HONEST_INLINE.replace("relu_cuda", "relu")
    assert check_source(source).ok


# --- the bundled known-good solutions ---------------------------------------------------------
SOLUTIONS = sorted(
    (Path(__file__).parents[1] / "kernelbench" / "problems").glob("*/solutions/*.py")
)


def _allow_torch(problem: Path) -> list[str]:
    """The problem's ALLOW_TORCH, read from its source (the problem is not imported)."""
    for node in ast.parse(problem.read_text()).body if problem.exists() else []:
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "ALLOW_TORCH":
            return list(ast.literal_eval(node.value))
    return []


@pytest.mark.skipif(not SOLUTIONS, reason="no bundled solutions in this checkout")
@pytest.mark.parametrize("solution", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_bundled_solutions_pass(solution):
    allow = _allow_torch(solution.parent.parent / solution.name)
    result = check_source(solution.read_text(), allow_torch=allow)
    assert result.findings == ()
    assert result.backend is not None
