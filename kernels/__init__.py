"""Public Triton kernels: the seed kernels of the efficiency modules, one family per file.

- ``attention.py``: FlashAttention-2-style forward (causal, grouped-query, any strides).
- ``qgemm.py``: quantized GEMM (W8A16/W6A16/W4A16 and W8A8); bit layouts in ``qgemm_pack.py``.
- ``conv.py``: conv2d as an implicit GEMM with a fused epilogue; shape facts in ``conv_shapes.py``.

Two callers import them: ``kernelloop.modules`` launches them when the library has no tuned entry
for a call, and the builtin coder's templates (``agents/builtin/templates/``) copy their
``@triton.jit`` source into candidates (``templates/seed.py`` reads it with ``inspect``).
Candidates themselves cannot import this package: a candidate file must be standalone.

This file imports nothing, so ``import kernelloop.kernels`` stays free of Triton; each kernel
file imports it when a caller imports that file.
"""
