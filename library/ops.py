"""What the library knows about an op: how to call its reference, its seed kernel and a tuned
entry, how to bucket shapes, and which bundled problems tune it.

Efficiency modules register their ops here at import (``modules -> library``, never the other
way). The library learns which packages register ops from the ``kernelloop.ops`` entry points
(``pyproject.toml``), so it names none of them: another package can add ops the same way.

A library *entry* is a verified ``ModelNew`` source for one of the op's problems: its
constructor takes ``init_args(config)`` and its ``forward`` takes the op's tensors, so one entry
serves every call whose shape falls in its bucket.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import torch


@dataclasses.dataclass(frozen=True)
class OpSpec:
    name: str  # op key, e.g. "attention", "qgemm.w4a16", "conv2d"
    problems: tuple[str, ...]  # bundled problem ids whose ModelNew implements this op
    reference: Callable[..., torch.Tensor]  # PyTorch path: reference(*tensors, **config)
    seed: Callable[..., torch.Tensor] | None  # the module's own Triton kernel, same signature
    init_args: Callable[[dict[str, Any]], list[Any]]  # config -> ModelNew constructor arguments
    config_from_init: Callable[[list[Any]], dict[str, Any]]  # inverse of init_args (promotion)
    bucket: Callable[[Sequence[torch.Tensor], dict[str, Any]], str]  # shape bucket of a call

    def dtype_of(self, tensors: Sequence[torch.Tensor]) -> str:
        return str(tensors[0].dtype).removeprefix("torch.")


_REGISTRY: dict[str, OpSpec] = {}


def register(spec: OpSpec) -> OpSpec:
    _REGISTRY[spec.name] = spec
    return spec


def get(name: str) -> OpSpec:
    if name not in _REGISTRY:
        _load_modules()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "(none registered)"
        raise KeyError(f"unknown op {name!r}; known ops: {known}") from None


def names() -> list[str]:
    _load_modules()
    return sorted(_REGISTRY)


_loaded: list[bool] = [False]
ENTRY_POINT_GROUP = "kernelloop.ops"


def _load_modules() -> None:
    """Import every package that declares ops (entry point group ``kernelloop.ops``), once.

    ``kernelloop library ...`` and dispatch by name work without the caller importing the
    modules; the library itself depends on no module, which is the layer order."""
    if _loaded[0]:
        return
    _loaded[0] = True
    from importlib.metadata import entry_points

    for point in entry_points(group=ENTRY_POINT_GROUP):
        point.load()


def pow2_bucket(n: int, lo: int = 16, hi: int = 1 << 16) -> int:
    """Round a size up to a power of two within [lo, hi]: the bucket granularity for shapes."""
    b = lo
    while b < n and b < hi:
        b *= 2
    return b
