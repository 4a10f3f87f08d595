"""The builtin judge's search: the next configs to try, chosen from what the hardware said.

Not a grid. Each measured candidate is diagnosed from its timing and feedback, and the diagnosis
names the knob moves worth trying first:

- register spills -> smaller tiles (spilled registers go to local memory, off-chip);
- occupancy limited by registers -> smaller tiles or more warps per block;
- memory-bound below 60% of peak bandwidth -> wider blocks per program (longer, coalesced
  accesses, more bytes in flight);
- compute-bound -> bigger tiles and deeper pipelining (more reuse per byte loaded);
- latency-bound -> more programs (smaller tiles) and deeper pipelining.

Moves are taken from the best measured config; when the diagnosis has nothing left untried, the
remaining one-step neighbours follow, nearest first. The search ends when every neighbour of the
best has been tried (a local optimum in this space) or the campaign's rounds run out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

BANDWIDTH_TARGET = 0.60  # below this fraction of peak DRAM bandwidth, a memory-bound kernel is slow
_TILE_PREFIXES = ("BLOCK", "MAX_BLOCK")


@dataclasses.dataclass(frozen=True)
class Feedback:
    """What one measured candidate told us; every field may be unknown (None)."""

    bound: str | None = None  # "memory-bound" | "compute-bound" | "latency-bound"
    bandwidth_fraction: float | None = None  # achieved DRAM bandwidth / peak
    spills: bool | None = None
    occupancy_limiter: str | None = None  # "registers" | "shared_mem" | "warps" | "blocks"

    @classmethod
    def from_measurements(cls, m: Mapping[str, Any] | None) -> Feedback:
        m = m or {}
        return cls(
            bound=m.get("bound"),
            bandwidth_fraction=m.get("bandwidth_fraction"),
            spills=m.get("spills"),
            occupancy_limiter=m.get("occupancy_limiter"),
        )


@dataclasses.dataclass(frozen=True)
class Trial:
    config: dict[str, Any]
    accepted: bool
    ms: float | None  # median time; None when not timed


@dataclasses.dataclass(frozen=True)
class Proposal:
    config: dict[str, Any]
    why: str


def _key(config: Mapping[str, Any]) -> tuple:
    return tuple(sorted(config.items()))


def _tiles(knobs: Mapping[str, tuple]) -> list[str]:
    return [k for k in knobs if k.startswith(_TILE_PREFIXES)]


def _step(knobs: Mapping[str, tuple], config: dict, knob: str, direction: int) -> dict | None:
    values = knobs[knob]
    if config.get(knob) not in values:
        return None
    i = values.index(config[knob]) + direction
    if not 0 <= i < len(values):
        return None
    return {**config, knob: values[i]}


def diagnose(feedback: Feedback, knobs: Mapping[str, tuple]) -> list[tuple[str, int, str]]:
    """Ordered (knob, direction, reason) moves suggested by ``feedback``."""
    tiles, moves = _tiles(knobs), []
    if feedback.spills:
        moves += [(t, -1, "register spills: smaller tiles") for t in tiles]
    if feedback.occupancy_limiter == "registers":
        moves += [(t, -1, "occupancy limited by registers: smaller tiles") for t in tiles]
        moves.append(("num_warps", +1, "occupancy limited by registers: more warps"))
    if feedback.occupancy_limiter == "shared_mem":
        moves.append(("num_stages", -1, "occupancy limited by shared memory: fewer stages"))
        moves += [(t, -1, "occupancy limited by shared memory: smaller tiles") for t in tiles]
    if feedback.bound == "memory-bound" and (feedback.bandwidth_fraction or 0) < BANDWIDTH_TARGET:
        why = (
            f"memory-bound at {feedback.bandwidth_fraction:.0%} of peak bandwidth"
            if feedback.bandwidth_fraction is not None
            else "memory-bound"
        )
        moves += [(t, +1, f"{why}: wider, coalesced blocks") for t in tiles]
        moves.append(("num_warps", +1, f"{why}: more loads in flight"))
    if feedback.bound == "compute-bound":
        moves += [(t, +1, "compute-bound: bigger tiles, more reuse") for t in tiles]
        moves.append(("num_stages", +1, "compute-bound: deeper pipelining"))
    if feedback.bound == "latency-bound":
        moves += [(t, -1, "latency-bound: more programs in flight") for t in tiles]
        moves.append(("num_stages", +1, "latency-bound: deeper pipelining hides latency"))
    return [m for m in moves if m[0] in knobs]


def best_trial(trials: Iterable[Trial]) -> Trial | None:
    timed = [t for t in trials if t.accepted and t.ms is not None]
    return min(timed, key=lambda t: t.ms) if timed else None


def next_configs(
    knobs: Mapping[str, tuple],
    trials: list[Trial],
    feedback: Feedback,
    k: int,
) -> list[Proposal]:
    """Up to ``k`` untried configs, diagnosis-driven moves from the best timed config first."""
    best = best_trial(trials)
    if best is None:
        return []
    tried = {_key(t.config) for t in trials}
    out: list[Proposal] = []

    def offer(config: dict | None, why: str) -> None:
        if config is not None and _key(config) not in tried and len(out) < k:
            tried.add(_key(config))
            out.append(Proposal(config, why))

    for knob, direction, why in diagnose(feedback, knobs):
        offer(_step(knobs, best.config, knob, direction), why)
    for knob in knobs:  # then the plain neighbourhood: one step either way on each knob
        for direction in (+1, -1):
            offer(_step(knobs, best.config, knob, direction), f"neighbour: {knob} {direction:+d}")
    return out


def smaller_configs(
    knobs: Mapping[str, tuple], failed: dict, tried: Iterable[dict], k: int
) -> list[Proposal]:
    """Up to ``k`` untried configs one step smaller than ``failed``, a config that did not fit
    the GPU: fewer pipeline stages first (each holds a copy of the tiles in shared memory), then
    the largest tile dimension."""
    seen = {_key(c) for c in tried}
    order = [n for n in knobs if n == "num_stages"]
    order += sorted((n for n in knobs if n.startswith("BLOCK")), key=lambda n: -failed.get(n, 0))
    out = []
    for knob in order:
        config = _step(knobs, failed, knob, -1)
        if config is not None and _key(config) not in seen and len(out) < k:
            seen.add(_key(config))
            out.append(Proposal(config, f"did not fit the GPU: {knob} {failed[knob]} -> "
                                        f"{config[knob]}"))  # fmt: skip
    return out


def limiter(ncu: Mapping[str, Any] | None) -> str | None:
    """Which resource bounds occupancy, from Nsight Compute's per-limit block counts."""
    if not ncu:
        return None
    limits = {}
    for name in ("registers", "shared_mem", "warps", "blocks"):
        raw = ncu.get(f"launch__occupancy_limit_{name}")
        value = raw[0] if isinstance(raw, tuple | list) else raw
        if isinstance(value, int | float):
            limits[name] = value
    if not limits:
        return None
    # On a tie the per-SM warp or block cap binds as much as the resource does: nothing to fix
    # then (a 32-register kernel at the warp cap is not register-limited).
    name = min(limits, key=lambda n: (limits[n], n in ("registers", "shared_mem")))
    return None if name == "blocks" else name
