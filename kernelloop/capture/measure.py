"""Measured time of each chosen unit, on the GPU the model runs on.

The roofline ranks units anywhere, before anything runs; on a CUDA device the real cost can
differ by a lot (launch-bound small ops, attention far from its peak). Each unit's first site
is called again as the model called it, with the arguments it got, and timed with the one
benchmarking routine (``sandbox/timing.py``: an L2 flush and fresh values before every call,
repetitions by the settings' time budget). Only the chosen units run, once each.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from .record import Call


def site_arguments(
    model: torch.nn.Module, inputs: Sequence[Any], calls: Sequence[Call]
) -> dict[int, tuple[tuple, dict]]:
    """Each call's (args, kwargs), by call id, from one more forward of ``model``."""
    wanted = {(c.module, c.call): c.id for c in calls}
    seen: dict[int, tuple[tuple, dict]] = {}
    counts: dict[str, int] = {}
    handles = []
    for name in {c.module for c in calls}:

        def pre(module, args, kwargs, name=name):
            index = counts.get(name, 0)
            counts[name] = index + 1
            call_id = wanted.get((name, index))
            if call_id is not None:  # a later in-place op must not change what is timed
                seen[call_id] = (_copied(args), _copied(kwargs))

        handles.append(model.get_submodule(name).register_forward_pre_hook(pre, with_kwargs=True))
    try:
        with torch.no_grad():
            model(*inputs)
    finally:
        for h in handles:
            h.remove()
    return seen


def time_units(
    model: torch.nn.Module,
    inputs: Sequence[Any],
    calls: Sequence[Call],
    *,
    seed: int = 0,
) -> dict[int, float]:
    """The median milliseconds of each call, by call id."""
    from .. import settings
    from ..sandbox import stats, timing

    cfg = settings.get()
    device = next(t.device for t in inputs if isinstance(t, torch.Tensor))
    clock, flusher = timing.Clock.capture(), timing.L2Flusher(device)
    gen = torch.Generator().manual_seed(seed)
    found = site_arguments(model, inputs, calls)
    medians: dict[int, float] = {}
    for call in calls:
        if call.id not in found:
            continue
        args, kwargs = found[call.id]
        module = model.get_submodule(call.module)
        names = list(kwargs)
        positional = len(args)

        def run(*values, module=module, names=names, positional=positional):
            kw = dict(zip(names, values[positional:], strict=True))
            return module(*values[:positional], **kw)

        values = [*args, *kwargs.values()]
        with torch.no_grad():
            run(*values)  # lazy initialisation and autotuning stay out of the warm-up
            clock.synchronize()
            samples = timing.benchmark(
                run,
                lambda values=values: timing.fresh_inputs(values, gen),
                clock=clock,
                flusher=flusher,
                budget_ms=cfg.timing_budget_ms,
                warmup_ms=cfg.warmup_ms,
            )
        medians[call.id] = stats.summarize(samples).median
    return medians


def _copied(tree: Any) -> Any:
    if isinstance(tree, torch.Tensor):
        return tree.detach().clone()
    if isinstance(tree, tuple | list):
        return type(tree)(_copied(x) for x in tree)
    if isinstance(tree, dict):
        return {k: _copied(v) for k, v in tree.items()}
    return tree
