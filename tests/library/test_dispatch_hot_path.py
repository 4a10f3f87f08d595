"""The dispatcher's per-call path: one cached decision per call signature, re-made exactly when
what it rests on changes (shapes or strides, the library, the settings, ``TRITON_INTERPRET``,
or a second passing), and never more often than that (benchmarks/dispatch.py measures it)."""

from __future__ import annotations

import pytest
import torch
from library_support import OP, promoted

from kernelloop import settings
from kernelloop.library import dispatcher, ops

HOT = "test_dispatch.hot"
BUCKETS: list[tuple] = []


def _bucket(tensors, config):
    BUCKETS.append(tuple(tensors[0].shape))
    return "nchw" if tensors[0].is_contiguous() else "other"


ops.register(
    ops.OpSpec(
        name=HOT,
        problems=(),
        reference=lambda x, scale=1.0: x * scale,
        seed=None,
        init_args=lambda config: [],
        config_from_init=lambda init: {},
        bucket=_bucket,
    )
)


@pytest.fixture(autouse=True)
def _fresh():
    BUCKETS.clear()


def test_repeated_calls_compute_the_bucket_once(lib):
    x = torch.randn(4, 8)
    for _ in range(50):
        torch.testing.assert_close(dispatcher.dispatch(HOT, x, scale=2.0), x * 2)
    assert BUCKETS == [(4, 8)]
    dispatcher.dispatch(HOT, torch.randn(4, 8), scale=2.0)  # other values, same signature
    assert len(BUCKETS) == 1


def test_shapes_strides_dtype_and_config_each_make_a_new_decision(lib):
    x = torch.randn(4, 8)
    dispatcher.choose(HOT, (x,), {"scale": 2.0})
    dispatcher.choose(HOT, (torch.randn(4, 16),), {"scale": 2.0})
    dispatcher.choose(HOT, (x.t(),), {"scale": 2.0})  # same numel, other shape and strides
    dispatcher.choose(HOT, (torch.randn(8, 4).t(),), {"scale": 2.0})  # x's shape, not its strides
    dispatcher.choose(HOT, (x.double(),), {"scale": 2.0})
    kind, fn, _ = dispatcher.choose(HOT, (x,), {"scale": 3.0})
    assert len(BUCKETS) == 6
    torch.testing.assert_close(fn(x), x * 3)  # the decision is for its own config


def test_a_decision_is_re_checked_after_a_second(lib, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(dispatcher.time, "monotonic", lambda: now[0])
    x = torch.randn(4, 8)
    dispatcher.choose(HOT, (x,), {})
    now[0] += dispatcher._STAMP_TTL_S / 2
    dispatcher.choose(HOT, (x,), {})
    assert len(BUCKETS) == 1
    now[0] += dispatcher._STAMP_TTL_S  # another process may have promoted an entry since
    dispatcher.choose(HOT, (x,), {})
    assert len(BUCKETS) == 2


def test_settings_and_the_interpreter_switch_are_seen_at_once(lib, problem, tmp_path, monkeypatch):
    x = torch.randn(8, 4096)
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    assert dispatcher.choose(OP, (x,), {})[0] == "reference"
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert dispatcher.choose(OP, (x,), {})[0] == "seed"
    promoted(lib, problem)  # a write by this process: the next call sees the entry
    assert dispatcher.choose(OP, (x,), {})[0] == "entry"
    with settings.override(library_dir=tmp_path / "other"):  # another library: no entry there
        assert dispatcher.choose(OP, (x,), {})[0] == "seed"
    assert dispatcher.choose(OP, (x,), {})[0] == "entry"
