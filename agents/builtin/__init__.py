"""The builtin coder and judge: kernels from templates, tuned by feedback-guided search.

No LLM: the reference is traced (``trace``), covered with templates (``plan``), written out as a
standalone Triton candidate (``module``), and its configs searched from measured time and
hardware feedback (``search``). Campaigns without an API key use it; LLM campaigns can start
from its kernels.
"""
