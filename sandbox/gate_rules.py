"""The static gate's rule tables: which names, imports and constructs get which reason code.

Kept apart from the AST walk in ``static_gate.py`` so a reader can review the policy on its own;
each table names the row of ``shared/docs/evaluator-threats.md`` it blocks.
"""

from __future__ import annotations

import re

from . import reasons

BACKENDS = ("triton", "cuda", "cuda-inline")
TRITON_JIT = "triton.jit"
LOAD_KERNEL = "kernelloop.sandbox.nvrtc.load_kernel"
LOAD_INLINE = "torch.utils.cpp_extension.load_inline"


def words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Qualified names (resolved through imports and aliases): a use of one, or of anything under
# it, gets the code. Checked in this order; the first match wins.
NAME_RULES = (
    # row 4: work that runs outside the timed call
    (
        words("""threading _thread multiprocessing concurrent asyncio signal torch.multiprocessing
        torch.futures torch.jit.fork os.fork os.forkpty"""),
        reasons.THREADS,
        "{} runs work outside the call; do all work in forward",
    ),
    # row 3: side streams escape default-stream events
    (
        words("""torch.cuda.Stream torch.cuda.stream torch.cuda.ExternalStream
        torch.cuda.set_stream torch.cuda.streams torch.cuda.StreamContext torch.Stream"""),
        reasons.STREAMS,
        "{} uses a side stream; launch on the current stream",
    ),
    # row 5: lazy/fake tensors and dispatch interception
    (
        words("torch._C torch.overrides torch.utils._python_dispatch torch._subclasses"),
        reasons.TENSOR_SUBCLASS,
        "{} intercepts tensor dispatch; return plain torch.Tensor outputs",
    ),
    # rows 7, 14: caches on disk, reading the reference, the environment
    (
        words("""torch.load torch.save torch.from_file torch.hub torch.utils.cpp_extension.load
        builtins.open pathlib io numpy.load numpy.save numpy.fromfile numpy.loadtxt numpy.memmap
        os.open os.environ os.getenv"""),
        reasons.FILE_ACCESS,
        "{} touches files or the OS; remove it",
    ),
    # row 14: code the gate cannot read
    (
        words("""importlib builtins types code runpy pickle marshal operator.attrgetter
        operator.methodcaller typing.get_type_hints typing.get_args typing.get_origin
        dataclasses.fields"""),
        reasons.DYNAMIC_CODE,
        "{} runs code the gate cannot read; remove it",
    ),
    # row 14: reaching the caller's frames and objects
    (
        words("inspect gc ctypes traceback sys._getframe sys.modules"),
        reasons.INTROSPECTION,
        "{} inspects the interpreter; remove it",
    ),
    # row 10: swallowing the error of a failed kernel
    (
        words("contextlib.suppress"),
        reasons.EXCEPTION_FALLBACK,
        "{} swallows exceptions; let errors propagate",
    ),
)
# Builtins and attribute names flagged wherever they appear (rows 5, 14, 23).
DYNAMIC_BUILTINS = words("exec eval compile __import__ globals locals vars breakpoint help input")
# Builtins that reach objects by name or build classes: callable directly, never values (row 23:
# `ga = getattr`, a lambda default, `functools.reduce(getattr, ...)` hide the call from the gate).
NAME_BUILTINS = words(
    "getattr setattr delattr hasattr vars globals locals open __import__ compile eval exec type"
)
# Tensor methods that hand tensor values to host code (row 26): the host never reads values, so
# a kernel that only copies a host-computed buffer cannot pass either.
VALUE_READS = words("item tolist numpy untyped_storage storage _typed_storage to_dlpack")
SUBCLASS_ATTRS = words("""_make_subclass _make_wrapper_subclass as_subclass TorchFunctionMode
    TorchDispatchMode __torch_function__ __torch_dispatch__""")
FILE_ATTRS = words("read_text read_bytes write_text write_bytes from_file load_library")
FRAME_ATTRS = words("""f_back f_globals f_locals f_code f_builtins gi_frame gi_code cr_frame
    ag_frame tb_frame tb_next _getframe co_code co_consts mro get_capture_scope
    used_global_vals rewritten_fn rewriter handle""")
ALLOWED_DUNDERS = words("__init__ __name__")
DUNDER_DEFS = {  # defining these changes how results behave (rows 5, 10); others: INTROSPECTION
    "__torch_function__": reasons.TENSOR_SUBCLASS,
    "__torch_dispatch__": reasons.TENSOR_SUBCLASS,
    "__exit__": reasons.EXCEPTION_FALLBACK,
    "__aexit__": reasons.EXCEPTION_FALLBACK,
}

# Row 9. Everything strictly under these namespaces computes; so do these names.
COMPUTE_NAMESPACES = words("""torch.nn.functional torch.special torch.linalg torch.fft torch.ops
    torch.jit torch.sparse torch.nested torch.autograd torch.func torch.library torch.compiler
    torch.distributed torch.cuda.comm torch.cuda.nccl triton.ops""")
COMPUTE_NAMES = words("""torch.compile torch.vmap torch.cuda.graph torch.cuda.graphs
    torch.cuda.CUDAGraph torch.cuda.make_graphed_callables torch.cuda.jiterator operator.matmul
    operator.imatmul""")
# torch.<name> calls that only allocate (random fills included: KernelBench declares parameters
# as nn.Parameter(torch.randn(...))), view, cast or query; any other torch.<name> call computes.
TORCH_HOST_OK = words("""empty empty_like empty_strided zeros zeros_like ones ones_like full
    full_like arange tensor as_tensor as_strided rand rand_like randn randn_like randint
    randint_like randperm device dtype finfo iinfo manual_seed is_tensor
    is_floating_point is_complex get_default_dtype promote_types result_type broadcast_shapes
    can_cast no_grad inference_mode enable_grad set_grad_enabled is_grad_enabled numel
    view_as_real view_as_complex reshape permute transpose t squeeze unsqueeze flatten narrow
    select chunk split tensor_split unbind movedim swapaxes swapdims from_blob""")
# Tensor methods (and torch / F / C++ functions) that compute; ``add_`` matches ``add``.
COMPUTE_METHODS = words("""matmul mm bmm mv dot vdot inner outer addmm addmv addr baddbmm
    addbmm einsum tensordot kron linear bilinear conv1d conv2d conv3d conv_transpose1d
    conv_transpose2d conv_transpose3d sum nansum mean nanmean prod std var norm max min amax amin
    aminmax argmax argmin cumsum cumprod cummax cummin logsumexp softmax log_softmax relu relu6
    gelu sigmoid tanh silu mish elu selu celu hardtanh hardswish hardsigmoid leaky_relu softplus
    logsigmoid exp exp2 expm1 log log2 log10 log1p sqrt rsqrt abs neg negative pow square
    reciprocal sin cos tan asin acos atan atan2 sinh cosh erf erfc erfinv add sub subtract mul
    multiply div divide true_divide floor_divide remainder fmod clamp clip clamp_min clamp_max
    where masked_fill lerp addcmul addcdiv maximum minimum fmax fmin hypot logaddexp floor ceil
    round trunc frac sign sgn nan_to_num eq ne lt le gt ge equal allclose isclose logical_and
    logical_or logical_not logical_xor bitwise_and bitwise_or bitwise_xor bitwise_not any all
    count_nonzero sort argsort topk kthvalue median mode unique bincount histc searchsorted
    bucketize nonzero gather scatter scatter_add scatter_reduce index_select index_add index_copy
    index_put masked_select masked_scatter take take_along_dim cat concat concatenate stack flip
    roll rot90 repeat repeat_interleave tile tril triu diag trace cross cdist layer_norm
    batch_norm group_norm instance_norm normalize dropout embedding one_hot pad interpolate
    max_pool1d max_pool2d max_pool3d avg_pool1d avg_pool2d avg_pool3d adaptive_avg_pool2d
    adaptive_max_pool2d scaled_dot_product_attention cosine_similarity apply_ map_""")
# Names under compute namespaces that only wrap or set up the candidate's own work: parameter
# initialisation, torch.autograd.Function (Liger-style wrappers run their forward under no_grad),
# and Inductor's @triton.jit helper library.
HOST_NAMESPACES = words("""torch.nn.init torch.autograd.Function torch.autograd.function
    torch._inductor.runtime.triton_helpers""")
# Base classes a candidate's classes may have (besides its own).
GOOD_BASES = words("""torch.nn.Module object torch.autograd.Function enum.Enum enum.IntEnum
    enum.StrEnum enum.Flag enum.IntFlag typing.NamedTuple typing.Generic typing.Protocol
    Exception ValueError RuntimeError int float str tuple dict list""")
# nn classes that only hold parameters or other modules: constructing and keeping them is fine.
NN_HOLDERS = words("""Parameter ParameterList ParameterDict Module ModuleList ModuleDict
    Sequential Identity Buffer UninitializedParameter""")
# ALLOW_TORCH names that stand for a family of ops.
ALLOW_ALIASES = {"matmul": words("mm bmm mv dot addmm addmv baddbmm addbmm linear @")}

# Native (CUDA C++) source strings: rows 3, 4, 14, then torch/vendor compute (row 9).
CPP_RULES = (
    (
        r"\b(?:cudaStreamCreate\w*|cuStreamCreate\w*|cudaLaunchHostFunc|cudaStreamAddCallback"
        r"|cudaStreamPerThread|getStreamFromPool)\b",
        reasons.STREAMS,
        "creates or uses a side stream; launch on the current stream",
    ),
    (
        r"\b(?:std::thread|std::async|pthread_create|fork\s*\()",
        reasons.THREADS,
        "starts host threads or processes; do the work in the launch",
    ),
    (
        r"\b(?:fopen|[io]?fstream|dlopen|getenv|popen|system\s*\()",
        reasons.FILE_ACCESS,
        "touches files, the environment or the OS; remove it",
    ),
)
CPP_TORCH_CALL = re.compile(r"\b(?:torch|at)::(?:\w+::)*([a-z_][a-z0-9_]*)\s*\(")
CPP_METHOD_CALL = re.compile(r"\.\s*([a-z_][a-z0-9_]*)\s*\(")
CPP_LIBRARY = re.compile(r"(?:cublas|cudnn)\w*|getCurrentCUDABlasHandle", re.IGNORECASE)
CPP_MARKERS = ("__global__", "__device__", "#include", "torch::", "at::")

PASS_THROUGH = words("list tuple dict iter reversed enumerate zip")
REGISTER_METHODS = words("append extend insert add_module register_module")
HINT = "write it as a kernel or ask for it in the problem's ALLOW_TORCH"
KEEP = "leave torch, triton and time as they are"
MARKER_TEXT = {
    "triton": "@triton.jit function",
    "cuda": "CUDA __global__ source loaded with kernelloop.sandbox.nvrtc.load_kernel",
    "cuda-inline": "torch.utils.cpp_extension.load_inline call",
}
