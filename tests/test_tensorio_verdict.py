"""Bundles round-trip exactly and reject malformed bytes; verdicts round-trip through JSON."""

from __future__ import annotations

import struct

import pytest
import torch

from kernelloop.sandbox import tensorio
from kernelloop.sandbox.compare import compare
from kernelloop.sandbox.stats import bootstrap_ratio, summarize
from kernelloop.sandbox.verdict import (
    BuildResult,
    CorrectnessResult,
    Reason,
    TimingResult,
    TrialResult,
    Verdict,
)


@pytest.mark.parametrize(
    "dtype", [torch.float32, torch.float16, torch.bfloat16, torch.int64, torch.bool, torch.uint8]
)
def test_bundle_round_trip(dtype):
    t = (torch.randn(3, 5) * 10).to(dtype)
    items, meta = tensorio.decode(tensorio.encode([t, 7, "x", t[:0]], {"k": 1}))
    assert torch.equal(items[0], t) and items[0].dtype == dtype
    assert items[1:3] == [7, "x"] and items[3].shape == (0, 5) and meta == {"k": 1}


def test_bundle_rejects_lies_about_extent():
    good = tensorio.encode([torch.ones(4)])
    (hlen,) = struct.unpack("<Q", good[:8])
    header = good[8 : 8 + hlen].replace(b'"nbytes": 16', b'"nbytes": 9999')
    forged = struct.pack("<Q", len(header)) + header + good[8 + hlen :]
    with pytest.raises(tensorio.BundleError):
        tensorio.decode(forged)
    with pytest.raises(tensorio.BundleError):
        tensorio.decode(b"\x00" * 4)


def test_compare_tolerances_nan_and_shape():
    ref = torch.tensor([1.0, float("nan"), float("inf"), 0.0])
    assert compare(ref.clone(), ref, atol=1e-4, rtol=1e-4).passed
    off = ref.clone()
    off[0] += 1e-3
    result = compare(off, ref, atol=1e-4, rtol=1e-4)
    assert not result.passed and result.code == "WRONG_OUTPUT" and result.mismatched == 1
    assert compare(ref[:2], ref, atol=1, rtol=1).code == "WRONG_SHAPE"
    assert compare(ref.half(), ref, atol=1, rtol=1).code == "WRONG_DTYPE"
    nan_for_inf = ref.clone()
    nan_for_inf[2] = float("nan")
    assert not compare(nan_for_inf, ref, atol=1, rtol=1).passed


def test_compare_chunks_bit_identical_or_not(monkeypatch):
    """Bit-identical chunks skip the float64 arithmetic; every other chunk still gets it."""
    from kernelloop.sandbox import compare as compare_mod

    monkeypatch.setattr(compare_mod, "_CHUNK", 4)
    ref = torch.arange(12, dtype=torch.float32)
    same = compare(ref.clone(), ref, atol=0.0, rtol=0.0)
    assert same.passed and same.max_abs_err == 0.0 and same.numel == 12
    out = ref.clone()
    out[9] += 0.5  # the third chunk only
    result = compare(out, ref, atol=0.1, rtol=0.0)
    assert not result.passed and result.mismatched == 1 and result.max_abs_err == 0.5
    assert compare(torch.tensor([-0.0]), torch.tensor([0.0]), atol=0.0, rtol=0.0).passed


def test_verdict_round_trips_through_json():
    times = [1.0, 1.1, 0.9, 1.05, 0.95]
    v = Verdict(
        accepted=False,
        reasons=[Reason("WRONG_OUTPUT", "3 of 9 elements")],
        problem_id="level1/01_relu",
        size="cpu",
        backend="triton",
        device="cpu",
        sandbox="bwrap",
        build=BuildResult(ok=True, seconds=0.5),
        correctness=CorrectnessResult(passed=False, trials=[TrialResult("main-given-1", False)]),
        timing=TimingResult(
            gpu="X",
            candidate=summarize(times),
            eager=summarize(times),
            compiled=None,
            speedup_eager=bootstrap_ratio(times, times),
            speedup_compile=None,
            order=["a"],
        ),
        phases={"static": 0.01},
    )
    again = Verdict.from_json(v.to_json())
    assert again == v and again.codes == ["WRONG_OUTPUT"]


def test_channels_last_layout_survives_the_round_trip(tmp_path):
    x = torch.randn(2, 3, 4, 5).to(memory_format=torch.channels_last)
    (back,), _ = tensorio.decode(tensorio.encode([x]))
    assert torch.equal(back, x) and back.is_contiguous(memory_format=torch.channels_last)
    tensorio.write(tmp_path / "b.bin", [x])
    (read,), _ = tensorio.read(tmp_path / "b.bin")
    assert torch.equal(read, x) and read.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("block", [7, 64, 1 << 24])  # blocks straddling the header and tensors
def test_bundle_hash_is_the_same_from_items_written_bytes_and_file(tmp_path, monkeypatch, block):
    import hashlib

    monkeypatch.setattr(tensorio, "_BLOCK", block)
    items = [torch.arange(100, dtype=torch.float32), 3, torch.ones(5, 7, dtype=torch.int16)]
    path = tmp_path / "b.bin"
    written = tensorio.write(path, items)
    assert written == tensorio.digest(items) == tensorio.file_hash(path)
    # A tree over blocks, not plain SHA-256 of the file, and it sees every byte.
    assert written != hashlib.sha256(path.read_bytes()).hexdigest()
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    assert tensorio.file_hash(path) != written


@pytest.mark.parametrize("block", [7, 1 << 24])
def test_read_hashed_hashes_the_bytes_it_loaded(tmp_path, monkeypatch, block):
    monkeypatch.setattr(tensorio, "_BLOCK", block)
    items = [torch.arange(100, dtype=torch.float32), torch.empty(0), "x", torch.ones(3, 5)]
    path = tmp_path / "b.bin"
    written = tensorio.write(path, items)
    got, _, digest = tensorio.read_hashed(path)
    assert digest == written and torch.equal(got[0], items[0]) and got[2] == "x"
    # Bytes past the last tensor (no `write` leaves any) are not loaded: the file is re-hashed.
    with open(path, "ab") as fh:
        fh.write(b"tail")
    assert tensorio.read_hashed(path)[2] == tensorio.file_hash(path) != written


def test_read_refuses_what_is_not_a_plain_file(tmp_path):
    import os

    tensorio.write(tmp_path / "b.bin", [torch.ones(3)])
    os.mkfifo(tmp_path / "fifo")  # an open of a FIFO with no writer would never return
    (tmp_path / "link").symlink_to(tmp_path / "b.bin")
    for name in ("fifo", "link"):
        with pytest.raises((tensorio.BundleError, OSError)):
            tensorio.read_hashed(tmp_path / name)


def test_bundle_hash_separates_lengths():
    assert tensorio._tree_hash([b""]) != tensorio._tree_hash([b"\0"])
    assert tensorio._tree_hash([b"ab", b"c"]) == tensorio._tree_hash([b"abc"])
