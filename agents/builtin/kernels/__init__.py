"""Triton kernels that builtin-coder templates copy into candidates (``templates/seed.py``).

They live in ordinary modules, not in template strings, so that they can be read, linted and
run on their own; a template renames them with its segment's prefix when it copies them.
"""
