"""When a module op may skip its torch custom op and run its implementation directly."""

from __future__ import annotations

import torch

_PLAIN = (torch.Tensor, torch.nn.Parameter)


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
        if type(t) not in _PLAIN:  # fake tensors, functorch wrappers, subclasses: the op's rules
            return False
        if grad and t.requires_grad:
            return False
    return True
