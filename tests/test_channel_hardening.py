"""Threat row 27: forged, malformed or flooding frames on the verdict channel.

The candidate shares its worker's process, so it can write any bytes on the channel: frames with
keys missing or of the wrong type, output paths outside the work dir, duplicates, floods. Every
such stream must end in a verdict that says CHANNEL_TAMPERED, with what the orchestrator keeps
bounded by the channel's caps; an exception while judging is a rejection (EVALUATOR_ERROR), never
a crash of the evaluator or of a campaign.

The first part drives the orchestrator's side alone (``channel.Reader`` -> ``launch.collect`` ->
``checks.judge``) with a well-formed stream and seeded random mutations of it; the second runs
cheating candidates (tests/candidates/escape_*.py) through the evaluator with ``gate="report"``,
so the layer behind the static gate is what is tested.
"""

from __future__ import annotations

import json
import os
import random
import struct
import threading
import time
from pathlib import Path

import pytest
import torch
from paths import CANDIDATES

from kernelloop.kernelbench.loader import load_one, solution_path
from kernelloop.sandbox import channel, checks, frames, launch, spawn, tensorio
from kernelloop.sandbox import reasons as R
from kernelloop.sandbox.evaluate import evaluate
from kernelloop.sandbox.plan import Plan, Trial
from kernelloop.sandbox.verdict import Verdict

RELU = "level1/01_relu"
PROBLEM = load_one(RELU)
PLAN = Plan(
    size="cpu",
    device="cpu",
    variants={"main": {}, "holdout1": {}},
    trials=[
        Trial("main-given-1", "main", 1, "given"),
        Trial("main-scaled-2", "main", 2, "scaled"),
        Trial("holdout1-given", "holdout1", 3, "given"),
    ],
    init_seed=0,
)
RUNS = [t.name for t in PLAN.trials] + [f"{PLAN.repeat}.repeat"]
REFERENCES = {
    t.name: [torch.randn(64, generator=torch.Generator().manual_seed(i))]
    for i, t in enumerate(PLAN.trials)
}
INPUT_HASHES = {t.name: f"{i:064x}" for i, t in enumerate(PLAN.trials)}
OUTCOME = spawn.Outcome(
    returncode=0,
    signal=None,
    timed_out=False,
    memory_exceeded=False,
    wall_s=1.0,
    peak_rss_bytes=0,
    stdout="",
    stderr="",
    isolation=[],
)


# --- the orchestrator's side, fed bytes ----------------------------------------------------------
def _files(name: str) -> list[str]:
    """The output files of one run: its own, and for a trial's own call (not its repeat) the
    same call in reversed program order (sandbox/interpreter/alternates.py)."""
    return [name] if "." in name else [name, f"{name}.order-reversed"]


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A work dir holding the outputs an honest worker would have written, and their hashes."""
    root = tmp_path_factory.mktemp("work")
    (root / "out").mkdir()
    hashes = {}
    for name in RUNS:
        outputs = REFERENCES[name.split(".")[0]]
        for stem in _files(name):
            hashes[stem] = tensorio.write(root / "out" / f"{stem}.bin", outputs)
    return root, hashes


def _good(hashes: dict[str, str]) -> list[dict]:
    """The frames of an honest CPU run (the Triton interpreter), without sequence numbers."""
    stream = [
        {"type": "hello", "pid": 4242, "device": "cpu", "network": "isolated"},
        {"type": "build", "ok": True, "seconds": 0.5, "inherits_reference": False},
    ]
    for name in RUNS:
        frame = {
            "type": "trial",
            "name": name,
            "ok": True,
            "spans": {"load": 0.001, "forward": 0.01},
            "output": f"out/{name}.bin",
            "output_sha256": hashes[name],
            "inputs_sha256": INPUT_HASHES[name.split(".")[0]],
            "devices": ["cpu"],
            "launches": 1,
            "threads_delta": 0,
            "threads_started": 0,
            "torch_ops": [],
            "patched": [],
            "guards_changed": [],
            "store_coverage": {"checked": True, "untracked": [], "note": ""},
        }
        if "." not in name:
            frame["alternates"] = [
                {
                    "label": "order:reversed",
                    "output": f"out/{stem}.bin",
                    "output_sha256": hashes[stem],
                }
                for stem in _files(name)[1:]
            ]
        stream.append(frame)
    stream.append({"type": "launches", "kernels": [{"kernel": "k", "args": {"n": "i32"}}]})
    stream.append({"type": "done"})
    return stream


def _frame(body: bytes) -> bytes:
    return channel.MAGIC + struct.pack("<I", len(body)) + body


def _encode(items: list[dict | bytes]) -> bytes:
    """Frames in order: a dict gets its position as ``seq`` unless it carries one; bytes go on
    the wire as they are (junk, or a frame built by hand)."""
    out = []
    for i, item in enumerate(items):
        if isinstance(item, bytes):
            out.append(item)
        else:
            out.append(_frame(json.dumps({"seq": i, **item}).encode()))
    return b"".join(out)


def _pipeline(stream: bytes, work: Path) -> tuple[Verdict, list, str | None]:
    """What evaluate does with a candidate worker's channel: read, collect, judge."""
    read_fd, write_fd = os.pipe()
    reader = channel.Reader(read_fd, schema=frames.CANDIDATE)

    def feed() -> None:
        try:
            view = memoryview(stream)
            while view:
                view = view[os.write(write_fd, view) :]
        except BrokenPipeError:
            pass  # the reader stopped at a bad frame
        finally:
            os.close(write_fd)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    kept, bad = launch.collect(reader)
    feeder.join(timeout=30)
    verdict = Verdict(False, [], PROBLEM.id, "cpu", "triton", "cpu", "test")
    checks.judge(PROBLEM, PLAN, verdict, kept, bad, OUTCOME, REFERENCES, work, INPUT_HASHES)
    return verdict, kept, bad


def test_a_well_formed_stream_is_judged_normally(work):
    verdict, kept, bad = _pipeline(_encode(_good(work[1])), work[0])
    assert bad is None and len(kept) == len(_good(work[1]))
    assert verdict.reasons == [] and verdict.correctness.passed, verdict.reasons
    assert verdict.build.ok and verdict.launches == [
        {"kernel": "k", "args": {"n": "i32"}, "unsupported": ""}
    ]


@pytest.mark.parametrize("output", ["/etc/passwd", "out/../../etc/passwd.bin", "out/a/b.bin"])
def test_an_alternate_output_outside_out_is_tampering(work, output):
    stream = _good(work[1])
    stream[2]["alternates"][0]["output"] = output
    verdict, kept, bad = _pipeline(_encode(stream), work[0])
    assert "'alternates': item 0: output" in (bad or ""), bad
    assert verdict.codes == [R.CHANNEL_TAMPERED] and len(kept) == 2


# Values each key's check must refuse: wrong types, out of bounds, paths out of out/.
WRONG = {
    "pid": ["1", -1, 1.5, True, None, 1 << 40],
    "device": [1, None, ["cpu"], "x" * 100],
    "network": [None, 5, "x" * 1000],
    "ok": [1, 0, "true", None],
    "seconds": ["0.5", None, float("nan"), float("inf"), -1.0, True, [0.5], 10**400],
    "inherits_reference": [0, "no", None],
    "name": [None, 5, ["main-given-1"], "x" * 500],
    "spans": [[], None, {"load": "1"}, {"load": float("nan")}, {"k" * 100: 1.0}, {"k": True}],
    "output": [
        "/etc/passwd",
        "/work/out/x.bin",
        "out/../../etc/passwd.bin",
        "../out/main-given-1.bin",
        "out/sub/x.bin",
        "out/x.txt",
        "out/.bin",
        "out/..bin",
        "out\\x.bin",
        "out/x\x00.bin",
        "out/" + "x" * 300 + ".bin",
        "",
        None,
        5,
    ],
    "output_sha256": ["0" * 63, "g" * 64, "A" * 64, None, 5],
    "inputs_sha256": ["0" * 65, None, ["0" * 64]],
    "devices": ["cpu", [1], None, ["x" * 100], ["cpu"] * 100],
    "launches": [-1, 1.0, "1", True, None, 10**30],
    "threads_delta": [-1, 1.5, "0", None, False],
    "threads_started": [-1, 1.5, "0", None, True, 10**30],
    "torch_ops": ["relu", [1], None, ["x"] * 2000],
    "patched": [{}, [None]],
    "guards_changed": ["x", [1], None, ["x"] * 2000],
    "kernels": ["k", [1], [[]], None, {}, [{}] * 100],
    "alternates": [
        None,
        "out/x.bin",
        [{}],
        [{"label": "order:reversed", "output": "/etc/passwd", "output_sha256": "0" * 64}],
        [{"label": "x", "output": "out/x.bin", "output_sha256": "0" * 64, "extra": 1}],
        [{"label": "x", "output": "out/x.bin", "output_sha256": "0" * 64}] * 65,
    ],
    "store_coverage": [
        None,
        [],
        {"checked": True},
        {"checked": 1, "untracked": [], "note": ""},
        {"checked": True, "untracked": [{}], "note": ""},
        {"checked": True, "untracked": [], "note": "x" * 5000},
    ],
}
JUNK = [
    b"KLF2\x02\x00\x00\x00{}",  # wrong magic
    b"\x00" * 8,
    _frame(b"{not json"),
    _frame(b"\xff\xfe{}"),  # not UTF-8
    _frame(b"[1, 2]"),  # JSON, not an object
    _frame(b'"frame"'),
    _frame(b"null"),
    _frame(b"42"),
    _frame(b"[" * 60_000 + b"]" * 60_000),  # deeper than json parses
    channel.MAGIC + struct.pack("<I", channel.MAX_FRAME + 1),  # oversized
    channel.MAGIC + struct.pack("<I", 0xFFFFFFFF),
]


def _mutations() -> list:
    """Each takes (stream, rng) and returns a stream with at least one frame the candidate
    worker would never send."""

    def frame_with_keys(s, rng):
        return rng.choice([i for i, f in enumerate(s) if set(f) - {"type"}])

    def drop_key(s, rng):  # a key the schema requires (the judge also wants the optional ones)
        i = frame_with_keys(s, rng)
        s[i].pop(rng.choice(sorted(set(s[i]) - {"type", "alternates", "store_coverage"})))
        return s

    def wrong_value(s, rng):
        i = frame_with_keys(s, rng)
        key = rng.choice(sorted(set(s[i]) - {"type"}))
        s[i][key] = rng.choice(WRONG[key])
        return s

    def unknown_key(s, rng):
        rng.choice(s)[rng.choice(["accepted", "verdict", "seq2", "x" * 60])] = True
        return s

    def unknown_type(s, rng):
        rng.choice(s)["type"] = rng.choice(["verdict", "result", "TRIAL", "", 5, None, ["trial"]])
        return s

    def no_type(s, rng):
        rng.choice(s).pop("type")
        return s

    def duplicate(s, rng):  # the same frame, same seq, twice
        i = rng.randrange(len(s))
        s = [{**f, "seq": n} for n, f in enumerate(s)]
        return s[: i + 1] + [dict(s[i])] + s[i + 1 :]

    def swap(s, rng):
        i = rng.randrange(len(s) - 1)
        s = [{**f, "seq": n} for n, f in enumerate(s)]
        s[i], s[i + 1] = s[i + 1], s[i]
        return s

    def bad_seq(s, rng):
        i = rng.randrange(len(s))
        s[i]["seq"] = rng.choice([i + 1, i - 1, str(i), float(i), None, True if i == 1 else -5])
        return s

    def second_copy(s, rng):  # a once-only frame again, in sequence
        kind = rng.choice(["hello", "build", "launches"])
        first = next(i for i, f in enumerate(s) if f["type"] == kind)
        at = rng.randrange(first + 1, len(s))
        return s[:at] + [dict(s[first])] + s[at:]

    def after_done(s, rng):
        return s + [dict(rng.choice(s[:-1]))]

    def too_early(s, rng):  # build before hello, or a trial before build
        i = rng.choice([1, 2])
        return [s[i]] + s[:i] + s[i + 1 :]

    def junk(s, rng):
        at = rng.randrange(len(s) + 1)
        return s[:at] + [rng.choice(JUNK)] + s[at:]

    def cut_short(s, rng):
        last = _encode(s[-1:])
        return s[:-1] + [last[: rng.randrange(9, len(last))]]

    return [
        drop_key,
        wrong_value,
        unknown_key,
        unknown_type,
        no_type,
        duplicate,
        swap,
        bad_seq,
        second_copy,
        after_done,
        too_early,
        junk,
        cut_short,
    ]


def test_every_malformed_stream_is_tampering_and_still_a_verdict(work):
    """400 seeded cases, one mutation each of the honest stream: never an exception, always
    CHANNEL_TAMPERED, and nothing kept from the first bad frame on."""
    rng = random.Random(27)
    good = _good(work[1])
    mutations = _mutations()
    for case in range(400):
        mutate = mutations[case % len(mutations)]
        stream = mutate([dict(f) for f in good], rng)
        verdict, kept, bad = _pipeline(_encode(stream), work[0])
        assert bad is not None, f"case {case} ({mutate.__name__}) was read as well formed"
        assert R.CHANNEL_TAMPERED in verdict.codes, (case, mutate.__name__, verdict.codes)
        assert not verdict.accepted and verdict.correctness is not None
        assert len(kept) < len(stream)
        json.dumps(verdict.to_dict())  # the verdict serialises (no candidate object leaked in)


def test_random_bytes_never_crash_the_orchestrator(work):
    rng = random.Random(29)
    honest = _encode(_good(work[1]))
    for case in range(300):
        kind = case % 3
        if kind == 0:  # noise
            stream = rng.randbytes(rng.randrange(1, 4096))
        elif kind == 1:  # the honest stream with a few bytes changed
            stream = bytearray(honest)
            for _ in range(rng.randrange(1, 4)):
                stream[rng.randrange(len(stream))] = rng.randrange(256)
            stream = bytes(stream)
        else:  # cut anywhere
            stream = honest[: rng.randrange(len(honest))]
        verdict, _, bad = _pipeline(stream, work[0])  # never raises
        if kind == 0:
            assert bad is not None, "noise was read as frames"
        if bad is not None:
            assert R.CHANNEL_TAMPERED in verdict.codes and not verdict.accepted, verdict.codes
        json.dumps(verdict.to_dict())


def _flood(head: list[dict], frame: dict, count: int) -> bytes:
    return _encode(head) + b"".join(
        _frame(json.dumps({"seq": 2 + i, **frame}).encode()) for i in range(count)
    )


FAILED_TRIAL = {"type": "trial", "name": "x", "ok": False, "spans": {}, "stage": "forward"}


@pytest.mark.parametrize(
    ("frame", "count"),
    [
        ({**FAILED_TRIAL, "kind": "runtime", "error": ""}, channel.MAX_FRAMES + 100),
        ({**FAILED_TRIAL, "kind": "runtime", "error": "x" * 8000}, 2500),  # 20 MB
    ],
    ids=["count", "bytes"],
)
def test_a_flood_of_well_formed_frames_stops_at_the_channel_caps(work, frame, count):
    import tracemalloc

    stream = _flood(_good(work[1])[:2], frame, count)
    tracemalloc.start()
    try:
        verdict, kept, bad = _pipeline(stream, work[0])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "flood" in (bad or ""), bad
    assert verdict.codes == [R.CHANNEL_TAMPERED]
    assert len(kept) <= channel.MAX_FRAMES
    assert sum(len(json.dumps(f)) for _, f in kept) <= channel.MAX_BYTES
    assert peak < 4 * channel.MAX_BYTES, f"{peak >> 20} MiB held while reading the flood"


def test_frames_of_a_mebibyte_are_refused_before_they_are_read(work):
    """The attacker's flood: 1 MiB junk frames in sequence (500 of them once cost +345 MB)."""
    junk = json.dumps({"type": "trial", "junk": "x" * ((1 << 20) - 100)})  # just under 1 MiB
    stream = _encode(_good(work[1])[:2]) + b"".join(
        _frame(junk.replace("{", f'{{"seq": {2 + i}, ', 1).encode()) for i in range(20)
    )
    verdict, kept, bad = _pipeline(stream, work[0])
    assert bad.startswith("a frame of") and len(kept) == 2
    assert verdict.codes == [R.CHANNEL_TAMPERED]


def test_the_frame_caps_leave_room_for_every_honest_frame():
    from kernelloop.sandbox import guards, timing, worker

    assert frames.MAX_SAMPLES >= timing.MAX_ITERS
    assert frames.MAX_LAUNCH_RECORDS >= guards.MAX_LAUNCH_RECORDS
    assert frames.MAX_ERROR >= worker._MAX_ERROR
    # the largest honest frame: a GPU timing frame with every sample and 256 kernels
    timing_frame = {
        "seq": 9,
        "type": "timing",
        "times_ms": [123.456789012345] * frames.MAX_SAMPLES,
        "kernels": [{"kernel": "k" * 60, "registers": 255, "spills": 0}] * 256,
    }
    assert len(json.dumps(timing_frame)) * 2 < channel.MAX_FRAME


@pytest.mark.parametrize("kind", ["fifo", "symlink"])
def test_an_output_that_is_not_a_plain_file_is_not_read(tmp_path, work, kind):
    """A FIFO left in out/ would block the judge's open forever; a symlink would make it read
    a file outside the work dir. Both are refused without opening them."""
    (tmp_path / "out").mkdir()
    hashes = dict(work[1])
    for name in RUNS:
        target = tmp_path / "out" / f"{name}.bin"
        if name == RUNS[0] and kind == "fifo":
            os.mkfifo(target)
        elif name == RUNS[0]:
            target.symlink_to(work[0] / "out" / f"{name}.bin")  # a valid bundle, elsewhere
        else:
            target.write_bytes((work[0] / "out" / f"{name}.bin").read_bytes())
    done: list = []
    judging = threading.Thread(
        target=lambda: done.append(_pipeline(_encode(_good(hashes)), tmp_path)), daemon=True
    )
    judging.start()
    judging.join(timeout=30)
    assert done, "the judge blocked on the candidate's output file"
    verdict, _, bad = done[0]
    assert bad is None and R.CHANNEL_TAMPERED in verdict.codes, verdict.codes
    assert f"trial {RUNS[0]}" in verdict.reasons[0].message


# --- cheating candidates through the evaluator ---------------------------------------------------
def _evaluate(name: str, sandbox: str = "auto"):
    source = (CANDIDATES / f"{name}.py").read_text()
    started = time.perf_counter()
    verdict = evaluate(PROBLEM, source, gate="report", sandbox=sandbox)
    return verdict, time.perf_counter() - started


@pytest.mark.parametrize("sandbox", ["auto", "process"])
def test_a_forged_build_frame_without_its_keys_is_tampering(sandbox):
    verdict, _ = _evaluate("escape_forged_build_frame", sandbox)
    assert verdict.accepted is False
    assert verdict.codes == [R.CHANNEL_TAMPERED], verdict.reasons
    assert "'build' frame without 'seconds'" in verdict.reasons[0].message
    assert verdict.correctness is not None  # judged, not crashed


def test_a_frame_flood_is_tampering_and_stops_the_worker():
    verdict, elapsed = _evaluate("escape_frame_flood")
    assert verdict.codes == [R.CHANNEL_TAMPERED], verdict.reasons
    assert "flood" in verdict.reasons[0].message
    assert verdict.worker["signal"] == "SIGKILL"  # stopped at the cap, not left to flood on
    assert elapsed < 60


def test_an_absolute_output_path_is_tampering_and_never_read(monkeypatch):
    opened: list[Path] = []
    real = checks.tensorio.read_hashed

    def recording(path):
        opened.append(Path(path))
        return real(path)

    monkeypatch.setattr(checks.tensorio, "read_hashed", recording)
    verdict, _ = _evaluate("escape_absolute_output")
    assert verdict.codes == [R.CHANNEL_TAMPERED], verdict.reasons
    assert "'output': not of the form out/<name>.bin" in verdict.reasons[0].message
    assert all(p.parent.name == "out" and p.name != "passwd" for p in opened), opened


# --- an exception while judging ------------------------------------------------------------------
@pytest.mark.parametrize("where", ["judge", "compare"])
def test_an_exception_while_judging_is_an_evaluator_error_verdict(monkeypatch, where):
    def broken(*args, **kwargs):
        raise KeyError("seconds")

    monkeypatch.setattr(checks, where, broken)
    source = solution_path(PROBLEM).read_text()  # honest: only our code fails
    verdict = evaluate(PROBLEM, source, gate="enforce", sandbox="auto")
    assert verdict.accepted is False
    assert verdict.codes == [R.EVALUATOR_ERROR], verdict.reasons
    assert "KeyError: 'seconds'" in verdict.reasons[0].message
    trace = verdict.worker["evaluator_traceback"]
    assert "Traceback" in trace and "broken" in trace and len(trace) <= 8000
    Verdict.from_json(verdict.to_json())  # a stored verdict like any other


def test_a_campaign_goes_on_when_an_evaluation_raises(tmp_path):
    from builtin_support import builtin_campaign

    calls: list[str] = []

    def broken_evaluator(problem, source):
        calls.append(source)
        raise RuntimeError("the executor lost its worker")

    store = builtin_campaign([PROBLEM], tmp_path, rounds=2, evaluate=broken_evaluator)
    candidates = store.candidates(RELU)
    assert calls and len(candidates) == len(calls)
    assert all(c.accepted is False and c.codes == [R.EVALUATOR_ERROR] for c in candidates)
    verdict = store.verdict_for(candidates[0].candidate_id)
    assert "the executor lost its worker" in verdict.reasons[0].message


def test_an_output_bundle_holding_anything_but_tensors_is_not_compared(tmp_path):
    """The worker writes tensors only; a bundle with a number or a dict in it was written by
    the candidate (an attacker's swapped writer made compare raise on a dict)."""

    (tmp_path / "out").mkdir()
    tensorio.write(tmp_path / "out" / "main.bin", [torch.ones(3), {"value": 1}])
    assert checks._read_output(tmp_path, "out/main.bin") == ([], None)
    tensorio.write(tmp_path / "out" / "ok.bin", [torch.ones(3)])
    outputs, digest = checks._read_output(tmp_path, "out/ok.bin")
    assert digest is not None and torch.equal(outputs[0], torch.ones(3))
