"""What an LLM call cost, in USD, from a table of per-token list prices.

A campaign stops on a USD budget, so a cost must never be invented: a model the table does not know
costs ``None`` (unknown), not 0 — a self-hosted vLLM model is "unpriced", not "free", and the run
store and dashboard say so. The bundled ``prices.json`` holds public list prices as of a date;
users override it with ``KERNELLOOP_PRICES`` (``settings.prices_path``) pointing at a file of the
same shape::

    {"_note": "...", "gpt-4.1-mini": {"prompt": 0.4, "completion": 1.6}}   # USD per 1M tokens

Keys starting with ``_`` are comments. Lookup is exact first, then the longest listed name that is
a prefix of the model at a name boundary, so dated snapshots (``gpt-4.1-mini-2025-04-14``) find
their family and ``gpt-4o-mini`` never falls into ``gpt-4o``. Cached-input discounts are ignored,
so costs err high.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

BUNDLED = Path(__file__).with_name("prices.json")


@dataclass(frozen=True)
class Price:
    prompt_per_1m: float  # USD per 1M prompt (input) tokens
    completion_per_1m: float  # USD per 1M completion (output, reasoning included) tokens


class PriceTable:
    """Model name -> :class:`Price`; ``cost()`` answers None for anything it cannot price."""

    def __init__(self, prices: Mapping[str, Price | tuple[float, float]], source: str = "") -> None:
        self.source = source  # the file it came from, for messages and the run record
        self._prices: dict[str, Price] = {}
        for name, price in prices.items():
            if not isinstance(price, Price):
                price = Price(float(price[0]), float(price[1]))
            self._prices[name.lower()] = price

    @classmethod
    def load(cls, path: str | Path | None = None) -> PriceTable:
        """Read ``path``, else settings.prices_path (KERNELLOOP_PRICES), else the bundled table."""
        if path is None:
            from kernelloop import settings

            path = settings.get().prices_path or BUNDLED
        path = Path(path)
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(
                f"price table {path} does not exist; fix KERNELLOOP_PRICES or unset it to use the "
                "bundled table"
            ) from None
        except json.JSONDecodeError as e:
            raise ValueError(f"price table {path} is not valid JSON: {e}") from None
        if not isinstance(raw, dict):
            raise ValueError(f"price table {path} must be a JSON object of model -> prices")
        prices: dict[str, Price] = {}
        for name, entry in raw.items():
            if name.startswith("_"):
                continue  # "_note" and other comments
            try:
                prices[name] = Price(float(entry["prompt"]), float(entry["completion"]))
            except (TypeError, KeyError, ValueError):
                raise ValueError(
                    f"price table {path}: entry {name!r} must look like "
                    '{"prompt": <USD per 1M tokens>, "completion": <USD per 1M tokens>}, '
                    f"got {entry!r}"
                ) from None
        return cls(prices, source=str(path))

    def __contains__(self, model: str) -> bool:
        return self.lookup(model) is not None

    def lookup(self, model: str | None) -> Price | None:
        """The price of ``model``: exact name, else the longest prefix at a name boundary."""
        if not model:
            return None
        key = model.lower()
        if key in self._prices:
            return self._prices[key]
        best: str | None = None
        for name in self._prices:
            # A boundary keeps "o3" from pricing "o3x" and "gpt-4.1" from pricing "gpt-4.10".
            if not key.startswith(name) or len(key) == len(name):
                continue
            boundary = not (key[len(name)].isalnum() or key[len(name)] == ".")
            if boundary and (best is None or len(name) > len(best)):
                best = name
        return self._prices[best] if best is not None else None

    def cost(
        self, model: str | None, prompt_tokens: int | None, completion_tokens: int | None
    ) -> float | None:
        """USD for one call, or None when the model or either token count is unknown."""
        price = self.lookup(model)
        if price is None or prompt_tokens is None or completion_tokens is None:
            return None
        return (
            prompt_tokens * price.prompt_per_1m + completion_tokens * price.completion_per_1m
        ) / 1e6
