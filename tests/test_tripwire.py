"""The guards' tripwire and thread-start count (threat rows 24 and 25), without a worker.

The tripwire itself is tested in this process. ``Guards`` patches process-wide things (Triton's
launch entry points, the thread-start functions), so it is exercised in a child process that
reports what it saw; tests/test_cheats.py runs the cheating candidates through the evaluator.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from kernelloop.sandbox import tripwire
from kernelloop.sandbox.tripwire import Tripwire


class _Target:
    def method(self):
        return 1


def test_a_replaced_method_is_seen_and_one_put_back_is_not():
    wire = Tripwire()
    wire.watch_attribute(_Target, "method", "Target.method")
    assert wire.changed() == []
    original = _Target.method
    try:
        _Target.method = lambda self: 2
        assert wire.changed() == ["Target.method"]
    finally:
        _Target.method = original
    assert wire.changed() == []  # undone before the check: the documented limit of a tripwire


def test_code_swapped_in_place_and_defaults_rewritten_are_seen():
    def counted(x, *, _original=len):
        return _original(x)

    wire = Tripwire()
    wire.watch("counted", counted)
    code = counted.__code__
    counted.__code__ = (lambda x, *, _original=len: 0).__code__  # same object, new behaviour
    assert wire.changed() == ["counted"]
    counted.__code__ = code
    counted.__kwdefaults__["_original"] = max
    assert wire.changed() == ["counted"]


def test_a_closure_may_count_but_not_swap_the_function_it_holds():
    def make():
        calls = 0
        helper = len

        def wrapper(x):
            nonlocal calls
            calls += 1
            return helper(x)

        return wrapper

    wrapper = make()
    wire = Tripwire()
    wire.watch("wrapper", wrapper)
    wrapper([1])
    assert wire.changed() == []  # a counter in a closure is data, not code
    cell = next(c for c in wrapper.__closure__ if c.cell_contents is len)
    cell.cell_contents = max
    assert wire.changed() == ["wrapper"]


def test_a_dotted_name_is_looked_up_again(monkeypatch):
    wire = Tripwire()
    wire.watch("kernelloop.sandbox.tripwire._resolve", tripwire._resolve)
    monkeypatch.setattr(tripwire, "_resolve", lambda dotted: None)
    assert wire.changed() == ["kernelloop.sandbox.tripwire._resolve"]


_GUARDS_SCRIPT = r"""
import _thread, json, threading
from concurrent.futures import ThreadPoolExecutor
import torch
from kernelloop.sandbox.guards import Guards, allowed_ops

allowed = allowed_ops(())
guards = Guards()
seen = {"watched": len(guards.tripwire), "at_install": guards.changed()}
x = torch.randn(8)

def call(body):
    before = guards.threads_started()
    with guards.recording_ops(allowed) as ops:
        body(ops)
    return guards.threads_started() - before, list(ops.disallowed)

seen["honest"] = call(lambda ops: torch.empty_like(x).copy_(x))
seen["changed_after_honest"] = guards.changed()

def joined(ops):
    t = threading.Thread(target=lambda: torch.relu(x))
    t.start()
    t.join()

seen["joined_thread"] = call(joined)

def pool(ops):
    with ThreadPoolExecutor(2) as ex:
        ex.submit(torch.relu, x).result()

seen["executor"] = call(pool)

def raw(ops):
    done = _thread.allocate_lock()
    done.acquire()
    _thread.start_new_thread(done.release, ())
    done.acquire()

seen["raw_thread"] = call(raw)
outside = threading.Thread(target=lambda: None)
outside.start()
outside.join()
seen["outside_a_call"] = guards.threads_started()

def shadow(ops):
    ops.note = lambda name: None
    torch.relu(x)

seen["instance_note"] = call(shadow)
seen["changed_after_instance_note"] = guards.changed()

def swap_record(ops):
    torch.relu(x)
    ops.disallowed = []

seen["swapped_record"] = call(swap_record)
Guards.launches = lambda self: 1
seen["changed_after_class_patch"] = guards.changed()
print("SEEN " + json.dumps(seen))
"""


@pytest.fixture(scope="module")
def guards_run() -> dict:
    env = {**os.environ, "TRITON_INTERPRET": "1", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [sys.executable, "-c", _GUARDS_SCRIPT], capture_output=True, text=True, env=env, timeout=300
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith("SEEN ")), None)
    assert line is not None, done.stderr[-3000:]
    return json.loads(line.removeprefix("SEEN "))


def test_guards_watch_their_code_and_an_honest_call_changes_nothing(guards_run):
    assert guards_run["watched"] > 50  # guards, channel, tensorio, launch and thread wrappers...
    assert guards_run["at_install"] == [] and guards_run["changed_after_honest"] == []
    assert guards_run["honest"] == [0, []]


def test_threads_started_during_a_call_count_joined_or_not(guards_run):
    assert guards_run["joined_thread"][0] == 1
    assert guards_run["executor"][0] >= 1
    assert guards_run["raw_thread"][0] == 1  # _thread directly: not in threading.enumerate()
    # A thread of ours between calls (the input digest's hashing pool, say) is not counted.
    inside = sum(guards_run[k][0] for k in ("joined_thread", "executor", "raw_thread"))
    assert guards_run["outside_a_call"] == inside


def test_an_altered_op_recorder_is_tampering_and_the_profiler_still_sees_the_op(guards_run):
    # The profiler's view is noted without the recorder's methods: it still sees the relu.
    assert "relu" in guards_run["instance_note"][1]
    assert any("OpRecorder instance (note)" in c for c in guards_run["changed_after_instance_note"])
    assert "relu" in guards_run["swapped_record"][1]
    changed = guards_run["changed_after_class_patch"]
    assert "kernelloop.sandbox.guards.Guards.launches" in changed
