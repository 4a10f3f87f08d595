"""Making a problem concrete: seeded inputs in a named distribution, and the seeded reference.

Trusted code only (the reference worker and the hygiene check call these; a candidate never sees
the seeds). Distributions transform floating inputs only; integer inputs (class indices, say) are
left as the problem made them.
"""

from __future__ import annotations

import types
from typing import Any

import torch

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def torch_dtype(name: str) -> torch.dtype:
    return _DTYPES[name]


def _apply_distribution(t: torch.Tensor, distribution: str, gen: torch.Generator) -> torch.Tensor:
    if distribution == "given":
        return t
    if distribution == "scaled":
        return t * 4.0
    if distribution == "sparse":
        keep = torch.rand(t.shape, generator=gen, device=t.device) >= 0.5
        return t * keep
    raise ValueError(f"unknown input distribution {distribution!r}")


def make_inputs(
    module: types.ModuleType, seed: int, distribution: str, dtype: str, device: str = "cpu"
) -> list[Any]:
    """``get_inputs()`` under ``seed``, transformed by ``distribution`` and cast to ``dtype``."""
    torch.manual_seed(seed)
    # Drawing on the target device keeps GPU-size inputs (hundreds of MB) off the CPU's slow RNG.
    with torch.device(device):
        raw = list(module.get_inputs())
    gen = torch.Generator(device=device).manual_seed(seed ^ 0x5EED)
    out: list[Any] = []
    for item in raw:
        if isinstance(item, torch.Tensor) and item.is_floating_point():
            item = _apply_distribution(item, distribution, gen).to(torch_dtype(dtype))
        if isinstance(item, torch.Tensor):
            # No .contiguous(): a channels-last input stays channels-last (that is the problem).
            item = item.to(device)
        out.append(item)
    return out


def init_inputs(module: types.ModuleType) -> list[Any]:
    return list(module.get_init_inputs())


def build_model(
    module: types.ModuleType, seed: int, dtype: str, device: str = "cpu"
) -> torch.nn.Module:
    """The reference ``Model`` with parameters drawn under ``seed``, cast to ``dtype``, in
    training mode (as PyTorch builds it) unless the problem declares ``EVAL_MODE = True``."""
    torch.manual_seed(seed)
    model = module.Model(*init_inputs(module))
    if isinstance(model, torch.nn.Module):
        model.train(not getattr(module, "EVAL_MODE", False))
    return model.to(device=device, dtype=torch_dtype(dtype))


def run_reference(model: torch.nn.Module, inputs: list[Any]) -> list[torch.Tensor]:
    with torch.no_grad():
        out = model(*inputs)
    return flatten_outputs(out)


def flatten_outputs(out: Any) -> list[Any]:
    """A forward may return one tensor or a tuple/list of them; compare them element-wise."""
    if isinstance(out, tuple | list):
        return list(out)
    return [out]
