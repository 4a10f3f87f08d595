"""Static gate: honest candidates pass, findings are well-formed, host glue is not flagged.

Each cheat and the code that names it: test_static_gate_cheats.py."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from gate_sources import HONEST_CUDA, HONEST_INLINE, HONEST_TRITON, candidate, codes
from paths import REPO

from kernelloop.sandbox import reasons
from kernelloop.sandbox.static_gate import Finding, GateResult, check_source, detect_backend


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
SOLUTIONS = sorted((REPO / "kernelbench" / "problems").glob("*/solutions/*.py"))


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
