"""When a module op may skip its torch custom op and run its implementation directly, and the
per-signature plan caches that make that direct path cheap."""

from __future__ import annotations

from typing import Any

import torch

from ..library import dispatcher

# Tensors an eager call may hand to the implementation directly (module ops key on the type).
PLAIN_TENSORS = (torch.Tensor, torch.nn.Parameter)
# Argument values a plan may be cached for. Others (tensors above all) hash by identity and could
# change in place under a cached plan, so their calls are planned afresh.
_SCALARS = (type(None), bool, int, float, str)


def bypass_custom_op(*tensors: torch.Tensor | None) -> bool:
    """True for a plain eager inference call.

    The custom ops exist for ``torch.compile`` (a fake kernel to trace) and autograd (a registered
    backward). An eager call that needs neither still paid for their machinery (dispatcher,
    autograd wrapper, dynamo's disable guard): about 40 us of Python per call on the CI
    machine, where the H100 run found the dispatched conv 50-130 us slower than its kernel,
    about a ResNet-sized 3x3 conv's whole kernel time.
    """
    if torch.compiler.is_compiling():
        return False
    grad = torch.is_grad_enabled()
    for t in tensors:
        if t is None:
            continue
        # fake tensors, functorch wrappers, subclasses: the op's rules
        if type(t) not in PLAIN_TENSORS:
            return False
        if grad and t.requires_grad:
            return False
    return True


def all_plain(*tensors: torch.Tensor | None) -> bool:
    """The type half of :func:`bypass_custom_op`, which a plan decides once per signature."""
    return all(type(t) in PLAIN_TENSORS for t in tensors if t is not None)


def cacheable(*values: Any) -> bool:
    """Whether a plan made for these argument values may serve later calls that compare equal
    (the key also holds each value's type: padding=1.0 must not reuse padding=1's plan)."""
    for v in values:
        if type(v) is tuple:
            if not cacheable(*v):
                return False
        elif type(v) not in _SCALARS:
            return False
    return True


def plan_cache() -> dict:
    """A module op's dict of plans by call signature, emptied with the dispatcher's caches."""
    return dispatcher.signature_cache()


def keep(cache: dict, key: tuple, plan: Any) -> Any:
    if len(cache) >= dispatcher.SIGNATURES_MAX:  # many distinct shapes: start afresh
        cache.clear()
    cache[key] = plan
    return plan
