"""Sizes for problems that declare none: a derived CPU size, and hold-out variants around it.

KernelBench files carry GPU sizes only (a ReLU over two 6.4 GB tensors). On a CPU the reference
and the interpreted kernel must both finish in seconds, so :func:`derive` shrinks the module's
size constants (and sizes written inline in ``get_inputs``, see ``inline_sizes.py``), halving
each in turn, largest first, until the largest tensor and the work fit a small budget, or until
no halving shrinks what is over it. What it keeps:

- structural constants (kernel sizes, strides, padding, dilation, groups, axes: by name) and
  every constant of 8 or less (a reduction dim, a stride, a head count);
- whatever the model needs to build and run: a halving that breaks it (a channel count no
  longer divisible by the groups, an image smaller than its kernel) stops that constant;
- the op graph: a size at which the forward runs other ATen ops than at the GPU size (a loop
  over a size, a special case for 1) stops that constant too; so does one that leaves a group
  norm fewer than ``PER_GROUP`` channels a group (a single channel normalises to noise).

:func:`holdouts` draws variants with odd sizes (not multiples of any block size) that keep the op
graph and build, from a seed: the evaluator's secret one per evaluation, or a fixed public one
for the coder's own probes (``coder_probes``), so no coder ever sees the sizes it is judged at.
All of it runs on the meta device (``probe.py``): nothing is allocated or computed.
"""

from __future__ import annotations

import dataclasses
import random
import re
from typing import TYPE_CHECKING, Any

from . import probe
from .errors import ProblemError

if TYPE_CHECKING:
    from .problem import Problem

LARGEST_ELEMENTS = 1 << 15  # the largest tensor at the derived size: 128 KiB of fp32
MAX_FLOPS = 1 << 25  # about 34 MFLOP: milliseconds for the reference, seconds interpreted
KEEP_AT_MOST = 8  # constants this small are geometry or counts, not sizes
FLOOR = 2
STRUCTURAL = re.compile(r"kernel|stride|pad|dilation|group|axis", re.I)
DERIVED_HOLDOUTS = 2
PER_GROUP = 4  # the fewest channels per group norm group a derived size may leave
_PROBES_PER_VARIANT = 12


@dataclasses.dataclass
class Derived:
    overrides: dict[str, Any]  # the derived size: constant -> value (changed ones only)
    why: dict[str, str]  # constant -> how its value was chosen
    scalable: list[str]  # the constants hold-outs may vary
    largest: int  # elements of the largest tensor at the derived size
    flops: float
    fits: bool  # within the budget; False when the kept constants alone exceed it

    def describe(self) -> str:
        sizes = ", ".join(f"{k}={v!r}" for k, v in self.overrides.items()) or "(unchanged)"
        return f"{sizes}: largest tensor {self.largest:,} elements, {self.flops / 1e6:.1f} MFLOP"


_cache: dict[tuple[str, str], Derived] = {}


def derive(problem: Problem) -> Derived:
    """The derived CPU size of ``problem`` (cached per file content)."""
    key = (str(problem.path), problem.source_hash)
    if key not in _cache:
        _cache[key] = _derive(problem)
    return _cache[key]


def _over(p: probe.Probe) -> bool:
    return p.largest > LARGEST_ELEMENTS or p.flops > MAX_FLOPS


def _helps(before: probe.Probe, after: probe.Probe) -> bool:
    """A halving helps if it shrinks what is over the budget: the largest tensor, or the work.
    (A stem conv's fixed 96x3x11x11 filter stays over the budget at any image size.)"""
    if before.largest > LARGEST_ELEMENTS and after.largest < before.largest:
        return True
    return before.flops > MAX_FLOPS and after.flops < before.flops


def _degenerate(base: probe.Probe, found: probe.Probe) -> bool:
    """Fewer channels per norm group than the GPU size has, and fewer than PER_GROUP."""
    if base.group_size is None or found.group_size is None:
        return False
    return found.group_size < min(base.group_size, PER_GROUP)


def _magnitude(v: Any) -> int:
    return max(v) if isinstance(v, tuple) else int(v)


def _halve(v: Any) -> Any:
    if isinstance(v, tuple):  # a shape constant: halve its largest entry
        i = max(range(len(v)), key=lambda j: v[j])
        return tuple(_halve(x) if j == i else x for j, x in enumerate(v))
    return max(FLOOR, v // 2)


def _scalable(problem: Problem) -> list[str]:
    out = []
    for name, v in problem.constants.items():
        if STRUCTURAL.search(name) or isinstance(v, bool):
            continue
        if isinstance(v, int) and v > KEEP_AT_MOST:
            out.append(name)
        elif isinstance(v, tuple) and max(v) > KEEP_AT_MOST:
            out.append(name)
    return out


def _derive(problem: Problem) -> Derived:
    try:
        base = probe.run(problem, {})
    except probe.ProbeError as exc:
        raise ProblemError(
            f"{problem.id}: cannot derive a CPU size: the reference does not run on the meta "
            f"device at its own sizes ({exc}); declare SIZES = {{'cpu': {{...}}}} or pass --set"
        ) from None
    scalable = _scalable(problem)
    why = {
        n: "kept: geometry, not a size" if STRUCTURAL.search(n) else "kept: 8 or less"
        for n in problem.constants
        if n not in scalable and not isinstance(problem.constants[n], float | str | bool)
    }
    values = {n: problem.constants[n] for n in scalable}
    stopped: dict[str, str] = {}
    current = base
    while _over(current):
        # One round halves each constant at most once, largest first, so the sizes shrink
        # together and keep their proportions (an image stays square, a batch keeps pace).
        progressed = False
        for name in sorted(values, key=lambda n: -_magnitude(values[n])):
            if name in stopped or not _over(current):
                continue
            smaller = _halve(values[name])
            if smaller == values[name]:
                stopped[name] = f"stopped at the floor ({FLOOR})"
                continue
            try:
                found = probe.run(problem, {**values, name: smaller})
            except probe.ProbeError as exc:
                stopped[name] = f"stopped: {smaller!r} does not build or run ({exc})"[:160]
                continue
            if found.op_sequence != base.op_sequence:
                stopped[name] = f"stopped: at {smaller!r} the forward runs other ops"
                continue
            if _degenerate(base, found):
                stopped[name] = f"stopped: at {smaller!r} a norm group holds too few values"
                continue
            if not _helps(current, found):  # what is over the budget does not depend on it
                stopped[name] = f"stopped: at {smaller!r} nothing over the budget shrinks"
                continue
            values[name], current, progressed = smaller, found, True
        if progressed:
            continue
        # No constant shrinks alone. Sizes that must stay equal (a broadcast of a (batch, n)
        # tensor against a (batch,) one where batch == n) shrink together.
        together = {n: _halve(v) for n, v in values.items()}
        try:
            found = probe.run(problem, together)
        except probe.ProbeError:
            break
        if found.op_sequence != base.op_sequence or together == values:
            break
        if not _helps(current, found):
            break
        values, current, stopped = together, found, {}
    for name in scalable:
        start, end = problem.constants[name], values[name]
        note = stopped.get(name, "")
        why[name] = (f"{start!r} -> {end!r}" if start != end else f"kept {start!r}") + (
            f" ({note})" if note else ""
        )
    changed = {n: v for n, v in values.items() if v != problem.constants[n]}
    return Derived(changed, why, scalable, current.largest, current.flops, not _over(current))


def _odd_near(v: int, rng: random.Random) -> int:
    lo, hi = max(2, int(v * 0.6)), max(3, int(v * 1.3))
    for _ in range(8):
        x = rng.randint(lo, hi) | 1
        if x != v:
            return x
    return v + 1 if v % 2 == 0 else v + 2


def _perturb(v: Any, rng: random.Random) -> list[Any]:
    """Values to try for one constant, the odd ones first; then steps that keep a power of two
    dividing it (a channel count that groups must divide)."""
    if isinstance(v, tuple):
        return [tuple(_odd_near(x, rng) if x > KEEP_AT_MOST else x for x in v)]
    tries = [_odd_near(v, rng)]
    for step in (2, 4, 8, 16, 32):
        if v % step == 0:
            tries += [v + step, v - step] if v > step else [v + step]
    return [t for t in tries if t >= 1 and t != v]


def _scaled(v: Any, ratio: float) -> Any:
    if isinstance(v, tuple):
        return tuple(_scaled(x, ratio) if x > KEEP_AT_MOST else x for x in v)
    x = max(2, round(v * ratio)) | 1
    return x if x != v else x + 2


def holdouts(
    problem: Problem, main: dict[str, Any], seed: int, count: int = DERIVED_HOLDOUTS
) -> list[dict[str, Any]]:
    """Up to ``count`` variants of ``main`` with other, preferably odd, sizes that build, run
    the same ops and stay within twice the budget; drawn from ``seed``."""
    rng = random.Random(seed)
    try:
        derived = derive(problem)
    except ProblemError:  # not probeable on the meta device: no variants can be checked
        return []
    start = {n: main.get(n, problem.constants[n]) for n in derived.scalable}
    if not start:
        return []
    try:
        at_main = probe.run(problem, main)
    except probe.ProbeError:
        return []
    # Small sizes may grow to twice the budget; a size beyond it (the GPU's) may not grow.
    small = not _over(at_main)
    most = 2 * LARGEST_ELEMENTS if small else at_main.largest
    most_flops = 2 * MAX_FLOPS if small else at_main.flops

    def fits(values: dict[str, Any]) -> bool:
        try:
            p = probe.run(problem, {**main, **values})
        except probe.ProbeError:
            return False
        return (
            p.op_sequence == at_main.op_sequence
            and p.largest <= most
            and p.flops <= most_flops
            and not _degenerate(at_main, p)
        )

    out: list[dict[str, Any]] = []
    for _ in range(count):
        variant: dict[str, Any] = {}
        budget = _PROBES_PER_VARIANT
        independent = {n: _perturb(v, rng)[0] for n, v in start.items()}
        ratio = rng.uniform(0.6, 1.3)  # one factor for all keeps equal sizes equal
        scaled = {n: _scaled(v, ratio) for n, v in start.items()}
        if fits(independent):
            variant = independent
        elif fits(scaled):
            variant = scaled
        else:  # one constant at a time, keeping what builds
            for name, v in start.items():
                for value in _perturb(v, rng):
                    if budget <= 0:
                        break
                    budget -= 1
                    if fits({**variant, name: value}):
                        variant[name] = value
                        break
        full = {**main, **variant}
        if variant and full not in out:
            out.append(full)
    return out


def coder_probes(problem: Problem, main: dict[str, Any]) -> list[dict[str, Any]]:
    """Sizes a coder may trace to see which numbers follow the size: drawn from a fixed seed,
    so they are public and unrelated to the evaluator's secret hold-outs."""
    return holdouts(problem, main, seed=0, count=2)
