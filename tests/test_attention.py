"""kernelloop.modules.attention: the seed kernel against SDPA, the custom op (eager, compiled,
backward), the nn.Module, dispatch decisions, and the op's library convention. On a CPU the
Triton kernel runs under the interpreter; on a GPU the same tests run it compiled."""

import os

import torch

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
if DEVICE == "cpu":  # must precede the first import of triton (the seed kernel imports it)
    os.environ["TRITON_INTERPRET"] = "1"

import ast  # noqa: E402
import importlib.util  # noqa: E402

import pytest  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from paths import REPO  # noqa: E402

import kernelloop.modules  # noqa: E402
from kernelloop import settings  # noqa: E402
from kernelloop.kernels.attention import flash_attention  # noqa: E402
from kernelloop.library import dispatcher, explain, ops, store  # noqa: E402
from kernelloop.modules import Attention, attention  # noqa: E402
from kernelloop.modules.attention import (  # noqa: E402
    SPEC,
    attention_bucket,
    reference_attention,
)

PROBLEMS = {
    "01": "kernelbench/problems/modules/01_attention_fp16.py",
    "02": "kernelbench/problems/modules/02_attention_causal_gqa_bf16.py",
}
TOL = {
    torch.float32: {"atol": 1e-4, "rtol": 1e-4},
    torch.float16: {"atol": 1e-2, "rtol": 1e-2},
    # P is rounded to bfloat16 before P @ V (as on the GPU): one bf16 ulp at |out| ~ 2-4 is 1.6e-2
    torch.bfloat16: {"atol": 2e-2, "rtol": 2e-2},
}


@pytest.fixture(autouse=True)
def _empty_library(tmp_path, monkeypatch):
    # Neither user nor shipped entries: every call here must reach the seed kernel.
    empty = store.Library(tmp_path / "user", tmp_path / "shipped")
    monkeypatch.setattr(store.Library, "default", classmethod(lambda cls: empty))
    dispatcher.clear_cache()


def _qkv(dtype, seq_q, seq_k=None, head_dim=64, q_heads=4, kv_heads=2, batch=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    seq_k = seq_q if seq_k is None else seq_k
    q = torch.randn(batch, q_heads, seq_q, head_dim, generator=g)
    k = torch.randn(batch, kv_heads, seq_k, head_dim, generator=g)
    v = torch.randn(batch, kv_heads, seq_k, head_dim, generator=g)
    return [t.to(DEVICE, dtype) for t in (q, k, v)]


def _expected(q, k, v, causal, scale=None):
    # float32 math rounded once to the input dtype: what an fp32-accumulating kernel should give
    out = reference_attention(q.float(), k.float(), v.float(), causal, scale)
    return out.to(q.dtype)


@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("head_dim", [64, 128])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32], ids=str)
def test_seed_kernel_matches_sdpa(dtype, head_dim, causal):
    # GQA (4 query heads on 2 K/V heads), an odd length over several small tiles: 100 rows in
    # 32-row query tiles and 16-key tiles cover unmasked tiles, diagonal tiles and both tails.
    q, k, v = _qkv(dtype, 100, head_dim=head_dim)
    out = flash_attention(q, k, v, causal, head_dim**-0.5, block_m=32, block_n=16)
    torch.testing.assert_close(out, _expected(q, k, v, causal), **TOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_seed_kernel_default_tiles_odd_length(dtype):
    q, k, v = _qkv(dtype, 37, head_dim=128, q_heads=2, kv_heads=2, batch=2)
    for causal in (False, True):
        out = flash_attention(q, k, v, causal, 0.1)
        torch.testing.assert_close(out, _expected(q, k, v, causal, 0.1), **TOL[dtype])


@pytest.mark.parametrize("seq_q,seq_k", [(37, 100), (100, 37), (1, 45), (45, 1)])
def test_different_query_and_key_lengths_align_causal_top_left(seq_q, seq_k):
    q, k, v = _qkv(torch.float32, seq_q, seq_k)
    for causal in (False, True):
        out = attention(q, k, v, causal=causal)
        # SDPA's is_causal: query i sees keys j <= i, whatever the lengths
        mask = torch.ones(seq_q, seq_k, dtype=torch.bool, device=DEVICE).tril()
        explicit = F.scaled_dot_product_attention(
            q,
            k.repeat_interleave(2, 1),
            v.repeat_interleave(2, 1),
            attn_mask=mask if causal else None,
        )
        torch.testing.assert_close(out, explicit, **TOL[torch.float32])


def test_strided_views_and_a_head_dim_that_is_not_a_power_of_two():
    # (batch, seq, heads, head_dim) storage seen through transpose(1, 2), head_dim 40 (padded)
    g = torch.Generator().manual_seed(1)
    q = torch.randn(2, 50, 4, 40, generator=g).to(DEVICE, torch.float16).transpose(1, 2)
    kv = torch.randn(2, 50, 2, 2, 40, generator=g).to(DEVICE, torch.float16)
    k, v = kv[:, :, :, 0].transpose(1, 2), kv[:, :, :, 1].transpose(1, 2)
    assert not q.is_contiguous() and not k.is_contiguous()
    out = flash_attention(q, k, v, True, 40**-0.5, block_m=16, block_n=16)
    torch.testing.assert_close(out, _expected(q, k, v, True), **TOL[torch.float16])


def test_attention_runs_the_seed_kernel_and_honours_scale():
    q, k, v = _qkv(torch.float16, 64)
    assert explain("attention", q, k, v, causal=True, scale=0.125).startswith("seed kernel")
    out = attention(q, k, v, causal=True)
    torch.testing.assert_close(out, _expected(q, k, v, True), **TOL[torch.float16])
    out = attention(q, k, v, scale=0.3)
    torch.testing.assert_close(out, _expected(q, k, v, False, 0.3), **TOL[torch.float16])


def test_unsupported_calls_fall_back_to_pytorch_and_say_why(capsys):
    q, k, v = _qkv(torch.float32, 20, head_dim=320, q_heads=2, kv_heads=1)
    with settings.override(dispatch_log=True):
        out = attention(q, k, v, causal=True)
    torch.testing.assert_close(out, reference_attention(q, k, v, True), **TOL[torch.float32])
    assert "head_dim 320" in capsys.readouterr().err
    with pytest.raises(ValueError, match="multiple of K/V heads"):
        attention(*_qkv(torch.float32, 8, q_heads=3, kv_heads=2))
    with pytest.raises(ValueError, match=r"\(batch, heads, seq, head_dim\)"):
        attention(q[0], k[0], v[0])


def test_dispatch_falls_back_to_pytorch_where_triton_cannot_run(monkeypatch):
    q, k, v = (t.cpu() for t in _qkv(torch.float16, 40))
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert dispatcher.choose("attention", (q, k, v), {"causal": False, "scale": None})[0] == "seed"
    monkeypatch.delenv("TRITON_INTERPRET")
    kind, fn, why = dispatcher.choose("attention", (q, k, v), {"causal": False, "scale": None})
    assert kind == "reference" and why.startswith("PyTorch") and "Triton cannot run" in why
    torch.testing.assert_close(fn(q, k, v), reference_attention(q, k, v))


def test_custom_op_under_torch_compile():
    q, k, v = _qkv(torch.float32, 40)

    def f(q, k, v):
        return attention(q, k, v, causal=True) * 2.0

    compiled = torch.compile(f, backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(compiled(q, k, v), 2.0 * _expected(q, k, v, True))
    fake = torch.ops.kernelloop.attention.default
    assert fake(q, k, v, True, 0.125).shape == q.shape


def test_backward_matches_sdpa():
    q, k, v = _qkv(torch.float32, 24, q_heads=4, kv_heads=2)
    ours = [t.clone().requires_grad_() for t in (q, k, v)]
    theirs = [t.clone().requires_grad_() for t in (q, k, v)]
    weight = torch.randn(q.shape, device=DEVICE)
    (attention(*ours, causal=True) * weight).sum().backward()
    (reference_attention(*theirs, causal=True) * weight).sum().backward()
    for a, e in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a.grad, e.grad, **TOL[torch.float32])


def test_attention_module_matches_a_pytorch_computation():
    torch.manual_seed(0)
    mod = Attention(128, num_heads=4, num_kv_heads=2, causal=True).to(DEVICE)
    x = torch.randn(2, 33, 128, device=DEVICE)
    context = torch.randn(2, 20, 128, device=DEVICE)

    def by_hand(x, ctx):
        b, s, _ = x.shape
        q = mod.q_proj(x).view(b, s, 4, 32).transpose(1, 2)
        k = mod.k_proj(ctx).view(b, ctx.shape[1], 2, 32).transpose(1, 2).repeat_interleave(2, 1)
        v = mod.v_proj(ctx).view(b, ctx.shape[1], 2, 32).transpose(1, 2).repeat_interleave(2, 1)
        scores = q @ k.transpose(-1, -2) / 32**0.5
        mask = torch.ones(s, ctx.shape[1], dtype=torch.bool, device=DEVICE).tril()
        p = scores.masked_fill(~mask, float("-inf")).softmax(-1)
        return mod.o_proj((p @ v).transpose(1, 2).reshape(b, s, 128))

    with torch.no_grad():
        torch.testing.assert_close(mod(x), by_hand(x, x), **TOL[torch.float32])
        torch.testing.assert_close(mod(x, context), by_hand(x, context), **TOL[torch.float32])
    assert "num_kv_heads=2" in repr(mod)


def test_registration_exports_and_buckets():
    assert ops.get("attention") is SPEC and "attention" in ops.names()
    assert kernelloop.modules.attention is attention  # the function, not the submodule
    for cfg in ({"causal": True, "scale": None}, {"causal": False, "scale": 0.2}):
        assert SPEC.config_from_init(SPEC.init_args(cfg)) == cfg
    q, k, v = (torch.empty(2, 32, s, 128, device="meta") for s in (4000, 4000, 4000))
    assert attention_bucket((q, k[:, :8], v[:, :8]), {"causal": True}) == "d128-s4096-causal-g4"
    assert attention_bucket((q, k, v), {"causal": False}) == "d128-s4096-full-g1"
    # shapes no bundled problem has get buckets no library entry carries
    assert attention_bucket((q[:, :, :1], k, v), {}) == "d128-s16-kv4096-full-g1"
    assert attention_bucket((q, k, v[..., :64]), {}) == "d128-dv64-s4096-full-g1"


def _load(relpath, name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, relpath))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # trusted bundled files (the dispatcher does the same)
    return module


@pytest.mark.parametrize("key", sorted(PROBLEMS))
def test_bundled_problem_and_solution_follow_the_op_convention(key):
    # A library entry is the solution's ModelNew built with SPEC.init_args(config) and called
    # with the op's tensors (q, k, v); the problem's Model is the same op in PyTorch.
    path = PROBLEMS[key]
    problem = _load(path, f"attention_problem_{key}")
    solution = _load(path.replace("modules/", "modules/solutions/"), f"attention_solution_{key}")
    assert SPEC.config_from_init(problem.get_init_inputs())["causal"] == (key == "02")
    dtype = torch.float16 if key == "01" else torch.bfloat16
    q, k, v = _qkv(dtype, 45, head_dim=64)
    for cfg in ({"causal": True, "scale": None}, {"causal": False, "scale": 0.2}):
        expected = _expected(q, k, v, **cfg)
        with torch.no_grad():
            reference = problem.Model(*SPEC.init_args(cfg))(q, k, v)
            got = solution.ModelNew(*SPEC.init_args(cfg)).to(DEVICE)(q, k, v)
        torch.testing.assert_close(reference, expected, **TOL[dtype])
        torch.testing.assert_close(got, expected, **TOL[dtype])


def _jit_functions(path):
    """The @triton.jit functions of a file as AST dumps, docstrings dropped (comments and
    formatting are not in the AST)."""
    found = {}
    with open(os.path.join(REPO, path)) as f:
        tree = ast.parse(f.read())
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and "triton.jit" in map(
            ast.unparse, node.decorator_list
        ):
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                node.body = node.body[1:]
            found[node.name] = ast.dump(node)
    return found


def test_solutions_carry_the_seed_kernel_unchanged():
    # Candidates cannot import kernelloop, so each solution holds a copy of the seed kernel;
    # a fix to one must reach the others.
    seed = _jit_functions("kernels/attention.py")
    assert set(seed) == {"_mma", "_key_tiles", "_attention_fwd"}
    for path in PROBLEMS.values():
        assert _jit_functions(path.replace("modules/", "modules/solutions/")) == seed, path
