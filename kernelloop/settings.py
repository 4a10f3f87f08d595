"""The one place kernelloop reads its environment.

Every tunable is a field of :class:`Settings`; every environment variable is read here and nowhere
else. Tests change settings with :func:`override`, which is scoped and restores the previous values.

| variable | field | default |
|---|---|---|
| ``KERNELLOOP_SANDBOX`` | ``sandbox`` | ``auto`` (bwrap where it works, else process) |
| ``KERNELLOOP_TIMEOUT`` | ``timeout_s`` | 120 s per worker |
| ``KERNELLOOP_MEMORY_CAP`` | ``memory_cap_bytes`` | half of the machine's RAM |
| ``KERNELLOOP_DISK_MARGIN`` | ``disk_margin_bytes`` | 64 MiB a work dir may grow past its outputs |
| ``KERNELLOOP_TIMING_BUDGET_MS`` | ``timing_budget_ms`` | 400 ms of timed calls per function |
| ``KERNELLOOP_WARMUP_MS`` | ``warmup_ms`` | 50 ms |
| ``KERNELLOOP_COMPILE_BASELINE`` | ``compile_baseline`` | on (``0`` skips torch.compile) |
| ``KERNELLOOP_BASELINE_TTL`` | ``baseline_ttl_s`` | 900 s of reused baselines (``0``: re-time) |
| ``KERNELLOOP_CACHE_DIR`` | ``cache_dir`` | ``$XDG_CACHE_HOME/kernelloop`` |
| ``KERNELLOOP_RUNS_DIR`` | ``runs_dir`` | ``./runs`` |
| ``KERNELLOOP_LIBRARY`` | ``library_dir`` | ``<cache_dir>/library`` |
| ``KERNELLOOP_BASE_URL``, then ``OPENAI_BASE_URL`` | ``base_url`` | none |
| ``KERNELLOOP_API_KEY``, then ``OPENAI_API_KEY`` | ``api_key`` | none |
| ``KERNELLOOP_LLM_TIMEOUT`` | ``llm_timeout_s`` | 300 s per request |
| ``KERNELLOOP_LLM_RETRIES`` | ``llm_retries`` | 4 (429, 5xx, timeouts; exponential backoff) |
| ``KERNELLOOP_PRICES`` | ``prices_path`` | bundled table (``agents/prices.json``) |
| ``KERNELLOOP_DISPATCH_LOG`` | ``dispatch_log`` | off (``1``: say which kernel each op ran) |
| ``KERNELLOOP_DOCKER_IMAGE`` | ``docker_image`` | ``host`` (empty image + host Python, read-only) |
| ``KERNELLOOP_EVAL_WORKERS`` | ``eval_workers`` | CPU evaluations at once: half the cores, 1 to 4 |

The API key is read here and handed to the LLM client only; workers get a scrubbed environment.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path


def _total_ram_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):  # not every platform exposes these
        return 16 << 30


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(float(raw))
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number") from None


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() not in {"0", "false", "no", "off"}


@dataclasses.dataclass(frozen=True)
class Settings:
    sandbox: str = "auto"
    timeout_s: float = 120.0
    memory_cap_bytes: int = dataclasses.field(default_factory=lambda: _total_ram_bytes() // 2)
    # A candidate's work dir may grow by its outputs (with room for extra ones) plus this: caches
    # (Triton's, per compiled kernel) and scratch files. Past it: DISK_LIMIT (threat row 29).
    disk_margin_bytes: int = 64 << 20
    timing_budget_ms: float = 400.0
    warmup_ms: float = 50.0
    compile_baseline: bool = True
    baseline_ttl_s: float = 900.0
    cache_dir: Path = dataclasses.field(
        default_factory=lambda: (
            Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "kernelloop"
        )
    )
    runs_dir: Path = Path("runs")
    library_dir: Path | None = None
    base_url: str | None = None
    api_key: str | None = dataclasses.field(default=None, repr=False)
    llm_timeout_s: float = 300.0
    llm_retries: int = 4
    prices_path: Path | None = None
    dispatch_log: bool = False
    docker_image: str = "host"
    eval_workers: int = dataclasses.field(
        default_factory=lambda: max(1, min(4, (os.cpu_count() or 2) // 2))
    )

    @classmethod
    def from_env(cls) -> Settings:
        base = cls()
        cache = Path(os.environ.get("KERNELLOOP_CACHE_DIR", base.cache_dir))
        library = os.environ.get("KERNELLOOP_LIBRARY")
        return cls(
            sandbox=os.environ.get("KERNELLOOP_SANDBOX", base.sandbox),
            timeout_s=float(_env_int("KERNELLOOP_TIMEOUT", int(base.timeout_s))),
            memory_cap_bytes=_env_int("KERNELLOOP_MEMORY_CAP", base.memory_cap_bytes),
            disk_margin_bytes=_env_int("KERNELLOOP_DISK_MARGIN", base.disk_margin_bytes),
            timing_budget_ms=float(_env_int("KERNELLOOP_TIMING_BUDGET_MS", 400)),
            warmup_ms=float(_env_int("KERNELLOOP_WARMUP_MS", 50)),
            compile_baseline=_env_bool("KERNELLOOP_COMPILE_BASELINE", True),
            baseline_ttl_s=float(_env_int("KERNELLOOP_BASELINE_TTL", int(base.baseline_ttl_s))),
            cache_dir=cache,
            runs_dir=Path(os.environ.get("KERNELLOOP_RUNS_DIR", base.runs_dir)),
            library_dir=Path(library) if library else cache / "library",
            base_url=os.environ.get("KERNELLOOP_BASE_URL") or os.environ.get("OPENAI_BASE_URL"),
            api_key=os.environ.get("KERNELLOOP_API_KEY") or os.environ.get("OPENAI_API_KEY"),
            llm_timeout_s=float(_env_int("KERNELLOOP_LLM_TIMEOUT", 300)),
            llm_retries=_env_int("KERNELLOOP_LLM_RETRIES", 4),
            dispatch_log=_env_bool("KERNELLOOP_DISPATCH_LOG", False),
            docker_image=os.environ.get("KERNELLOOP_DOCKER_IMAGE") or base.docker_image,
            eval_workers=max(1, _env_int("KERNELLOOP_EVAL_WORKERS", base.eval_workers)),
            prices_path=Path(os.environ["KERNELLOOP_PRICES"])
            if os.environ.get("KERNELLOOP_PRICES")
            else None,
        )


_current: Settings | None = None


def get() -> Settings:
    """The active settings (read from the environment on first use)."""
    global _current
    if _current is None:
        _current = Settings.from_env()
    return _current


@contextlib.contextmanager
def override(**changes: object) -> Iterator[Settings]:
    """Temporarily replace some fields, e.g. ``with override(timeout_s=5): ...``."""
    global _current
    previous = get()
    _current = dataclasses.replace(previous, **changes)
    try:
        yield _current
    finally:
        _current = previous
