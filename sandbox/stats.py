"""Pure statistics for timing samples: robust summaries and bootstrap intervals for speedups.

No torch and no numpy, only the standard library with a seeded ``random.Random``, so CPU tests pin
exact numbers and a verdict's figures can be recomputed anywhere from its stored samples.

Quantiles use linear interpolation between order statistics (Hyndman & Fan type 7, numpy's
default), so figures agree with ``numpy.quantile`` and with Triton's ``do_bench`` quantiles.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Summary:
    n: int
    median: float
    mean: float
    std: float  # sample standard deviation (n - 1); 0.0 for a single sample
    min: float
    max: float
    q1: float  # 25th percentile
    q3: float  # 75th percentile
    iqr: float  # q3 - q1: the spread to report next to the median
    unit: str = "ms"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Summary:
        return cls(**data)

    def __str__(self) -> str:
        return f"{self.median:.4g} {self.unit} (IQR {self.iqr:.3g}, n={self.n})"


@dataclass(frozen=True)
class Interval:
    point: float  # the statistic on the full samples
    low: float
    high: float
    confidence: float  # e.g. 0.95
    method: str = "bootstrap-percentile"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Interval:
        return cls(**data)

    def __contains__(self, value: float) -> bool:
        return self.low <= value <= self.high

    def __str__(self) -> str:
        pct = round(self.confidence * 100)
        return f"{self.point:.3g}x ({pct}% CI {self.low:.3g}-{self.high:.3g})"


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """The q-quantile (0 <= q <= 1) of already sorted values, linear interpolation (type 7)."""
    if not sorted_values:
        raise ValueError("quantile of no values")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile q must be within [0, 1], got {q}")
    pos = q * (len(sorted_values) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def summarize(samples: Sequence[float], unit: str = "ms") -> Summary:
    """Median, mean, spread and extremes of ``samples`` (all in ``unit``)."""
    values = sorted(_checked(samples, "summarize"))
    q1, med, q3 = (quantile(values, q) for q in (0.25, 0.5, 0.75))
    return Summary(
        n=len(values),
        median=med,
        mean=statistics.fmean(values),
        std=statistics.stdev(values) if len(values) > 1 else 0.0,
        min=values[0],
        max=values[-1],
        q1=q1,
        q3=q3,
        iqr=q3 - q1,
        unit=unit,
    )


_STATS: dict[str, Callable[[list[float]], float]] = {
    "median": lambda v: quantile(sorted(v), 0.5),
    "mean": statistics.fmean,
    "min": min,
}


def bootstrap_ratio(
    num: Sequence[float],
    den: Sequence[float],
    *,
    stat: str = "median",
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Confidence interval of stat(num) / stat(den) by the percentile bootstrap.

    For a speedup pass ``num`` = baseline times and ``den`` = candidate times: a ``low`` above
    1.0 means the candidate is faster with the stated confidence. The two sample sets are
    resampled independently (they come from separate runs); ``seed`` makes the interval
    reproducible. Roughly 2000 resamples keep the 2.5%/97.5% tails stable to a few parts in a
    thousand; each resample costs O(n log n) for the median.
    """
    num_v, den_v = _checked(num, "bootstrap_ratio num"), _checked(den, "bootstrap_ratio den")
    if stat not in _STATS:
        raise ValueError(f"stat must be one of {sorted(_STATS)}, got {stat!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be within (0, 1), got {confidence}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    fn = _STATS[stat]
    point = _ratio(fn(num_v), fn(den_v), stat)
    rng = random.Random(seed)
    ratios = sorted(
        _ratio(fn(rng.choices(num_v, k=len(num_v))), fn(rng.choices(den_v, k=len(den_v))), stat)
        for _ in range(n_boot)
    )
    tail = (1.0 - confidence) / 2
    return Interval(point, quantile(ratios, tail), quantile(ratios, 1.0 - tail), confidence)


def _ratio(a: float, b: float, stat: str) -> float:
    if b == 0:
        raise ValueError(f"the {stat} of the denominator samples is 0; a ratio is undefined")
    return a / b


def _checked(samples: Sequence[float], what: str) -> list[float]:
    values = [float(s) for s in samples]
    if not values:
        raise ValueError(f"{what}: no samples (did the timing loop run?)")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"{what}: samples contain NaN or infinity: {values[:8]}")
    return values
