"""Moving tensors between trusted code and workers without pickle.

A bundle is ``[8-byte little-endian header length][JSON header][raw bytes]``. The header lists
items; each is a tensor (dtype, shape, offset, nbytes) or a JSON value. The trusted side rebuilds
tensors with ``torch.frombuffer`` after validating every field, so nothing a candidate writes can
run code or smuggle a ``Tensor`` subclass (threat row 5) into the orchestrator.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import struct
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import torch

from ..errors import KernelloopError

_DTYPES = {
    str(dt).removeprefix("torch."): dt
    for dt in (
        torch.float32,
        torch.float64,
        torch.float16,
        torch.bfloat16,
        torch.int8,
        torch.uint8,
        torch.int16,
        torch.int32,
        torch.int64,
        torch.bool,
    )
}
MAX_HEADER = 1 << 20


class BundleError(KernelloopError, ValueError):
    """The bytes are not a well-formed bundle."""


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def dtype_from_name(name: str) -> torch.dtype:
    try:
        return _DTYPES[name]
    except KeyError:
        raise BundleError(f"unsupported dtype {name!r}") from None


def _layout(items: list[Any], meta: dict[str, Any] | None) -> tuple[bytes, list[memoryview]]:
    """The bundle's prefix+header and the tensors' raw bytes (views, not copies)."""
    entries: list[dict[str, Any]] = []
    payload: list[memoryview] = []
    offset = 0
    for item in items:
        if isinstance(item, torch.Tensor):
            cpu = item.detach().to("cpu")
            layout = _layout_of(cpu)
            # Bytes in memory order, so a channels-last tensor arrives channels-last.
            flat = cpu.permute(0, 2, 3, 1) if layout == "channels_last" else cpu
            flat = flat.contiguous()
            raw = memoryview(flat.reshape(-1).view(torch.uint8).numpy()) if cpu.numel() else b""
            entries.append(
                {
                    "kind": "tensor",
                    "dtype": dtype_name(cpu.dtype),
                    "shape": list(cpu.shape),
                    "layout": layout,
                    "offset": offset,
                    "nbytes": len(raw),
                }
            )
            payload.append(memoryview(raw))
            offset += len(raw)
        else:
            entries.append({"kind": "value", "value": item})
    header = json.dumps({"items": entries, "meta": meta or {}}).encode()
    return struct.pack("<Q", len(header)) + header, payload


def _layout_of(t: torch.Tensor) -> str:
    if (
        t.dim() == 4
        and not t.is_contiguous()
        and t.is_contiguous(memory_format=torch.channels_last)
    ):
        return "channels_last"
    return "contiguous"


def _shaped(flat: torch.Tensor, shape: list[int], layout: str) -> torch.Tensor:
    if layout == "channels_last":
        n, c, h, w = shape
        return flat.reshape(n, h, w, c).permute(0, 3, 1, 2)
    return flat.reshape(shape)


def encode(items: list[Any], meta: dict[str, Any] | None = None) -> bytes:
    """Serialise a flat list of tensors and JSON values (tensors are copied to CPU)."""
    head, payload = _layout(items, meta)
    return head + b"".join(payload)


# --- hashing -------------------------------------------------------------------------------------
# A bundle's hash is SHA-256 over 16 MiB blocks, hashed on several threads (hashlib releases the
# GIL), then SHA-256 over the length and the blocks' digests in order. It is as hard to collide
# as SHA-256 itself and several times faster on many cores: a GPU-size evaluation hashes each
# input and output, gigabytes per candidate, and one-core SHA-256 (about 2 GB/s) was seconds of
# every evaluation.
_BLOCK = 1 << 24
_HASH_THREADS = max(1, min(8, os.cpu_count() or 1))


def _tree_hash(chunks: Iterable[bytes | memoryview], _sha256=hashlib.sha256) -> str:
    """The bundle hash of the concatenated ``chunks`` (any sizes; big ones are not copied)."""

    def block_digest(block) -> bytes:
        return _sha256(block).digest()

    digests: list[bytes] = []
    total = 0
    carry = bytearray()
    with ThreadPoolExecutor(_HASH_THREADS, thread_name_prefix="kernelloop-hash") as pool:
        pending: list[Future] = []

        def submit(block) -> None:
            pending.append(pool.submit(block_digest, block))
            while len(pending) > 2 * _HASH_THREADS:  # bounds the blocks held in memory
                digests.append(pending.pop(0).result())

        for chunk in chunks:
            view = memoryview(chunk).cast("B")
            total += len(view)
            if carry:  # top up the partial block left by the previous chunk
                take = min(_BLOCK - len(carry), len(view))
                carry += view[:take]
                view = view[take:]
                if len(carry) == _BLOCK:
                    submit(bytes(carry))
                    carry = bytearray()
            whole = len(view) - len(view) % _BLOCK
            for start in range(0, whole, _BLOCK):
                submit(view[start : start + _BLOCK])
            carry += view[whole:]
        if carry or not total:
            submit(bytes(carry))
        digests += [f.result() for f in pending]
    return _sha256(struct.pack("<Q", total) + b"".join(digests)).hexdigest()


def digest(items: list[Any]) -> str:
    """The hash of exactly the bytes :func:`encode` would produce, without materialising them:
    GPU-size inputs are hundreds of MB."""
    head, payload = _layout(items, None)
    return _tree_hash([head, *payload])


def file_hash(path) -> str:
    """The hash of a bundle file as written: equal to :func:`digest` of the items it holds."""

    def blocks():
        with _open_regular(path) as fh:
            yield from iter(lambda: fh.read(_BLOCK), b"")

    return _tree_hash(blocks())


def decode(data: bytes, *, payload_size: int | None = None) -> tuple[list[Any], dict[str, Any]]:
    """Inverse of :func:`encode`, validating every field before touching the payload.

    With ``payload_size`` (used by :func:`read`) ``data`` holds only the prefix and header, and
    tensors come back as placeholders for the caller to fill from the file.
    """
    if len(data) < 8:
        raise BundleError("truncated bundle")
    (hlen,) = struct.unpack("<Q", data[:8])
    if hlen > MAX_HEADER or 8 + hlen > len(data):
        raise BundleError("bad header length")
    try:
        header = json.loads(data[8 : 8 + hlen])
    except ValueError as exc:
        raise BundleError(f"header is not JSON: {exc}") from None
    if not isinstance(header, dict) or not isinstance(header.get("items"), list):
        raise BundleError("header has no item list")
    payload = memoryview(data)[8 + hlen :]
    size = len(payload) if payload_size is None else payload_size
    items: list[Any] = []
    for entry in header["items"]:
        if not isinstance(entry, dict):
            raise BundleError("item is not an object")
        if entry.get("kind") == "value":
            items.append(entry.get("value"))
            continue
        items.append(_tensor_from(entry, payload, size, deferred=payload_size is not None))
    meta = header.get("meta") if isinstance(header.get("meta"), dict) else {}
    return items, meta


def _tensor_from(entry: dict[str, Any], payload: memoryview, size: int, *, deferred: bool):
    dtype = dtype_from_name(str(entry.get("dtype")))
    shape = entry.get("shape")
    offset, nbytes = entry.get("offset"), entry.get("nbytes")
    if not (isinstance(shape, list) and all(isinstance(s, int) and s >= 0 for s in shape)):
        raise BundleError("bad tensor shape")
    if not (isinstance(offset, int) and isinstance(nbytes, int) and offset >= 0 and nbytes >= 0):
        raise BundleError("bad tensor extent")
    numel = 1
    for s in shape:
        numel *= s
    itemsize = torch.empty((), dtype=dtype).element_size()
    if numel * itemsize != nbytes or offset + nbytes > size:
        raise BundleError("tensor extent does not match its shape")
    layout = entry.get("layout", "contiguous")
    if layout not in ("contiguous", "channels_last") or (
        layout == "channels_last" and len(shape) != 4
    ):
        raise BundleError("bad tensor layout")
    if numel == 0:
        return torch.empty(shape, dtype=dtype)
    if deferred:
        return _Pending(torch.empty(numel, dtype=dtype), shape, layout, offset, nbytes)
    raw = bytearray(payload[offset : offset + nbytes])  # own the memory: writable, no aliasing
    return _shaped(torch.frombuffer(raw, dtype=torch.uint8).view(dtype), shape, layout)


def write(path, items: list[Any], meta: dict[str, Any] | None = None) -> str:
    """Write the bundle; returns its hash (:func:`file_hash` of the file), from the same bytes:
    a GPU tensor is copied to the host once for both."""
    head, payload = _layout(items, meta)
    with open(path, "wb") as fh:
        fh.write(head)
        for chunk in payload:
            fh.write(chunk)
    return _tree_hash([head, *payload])


def read(path) -> tuple[list[Any], dict[str, Any]]:
    """Like :func:`decode`, but reads each tensor straight into its own storage (one copy)."""
    items, meta, _ = _read(path, hashed=False)
    return items, meta


def read_hashed(path) -> tuple[list[Any], dict[str, Any], str]:
    """:func:`read` plus the :func:`file_hash` of the file, from the bytes just read when the
    tensors tile the payload in order (every bundle :func:`write` makes): a GPU-size output is
    then read once, not once to hash and once to load, and the hash covers exactly the bytes
    the caller goes on to compare. Any other layout (only a hand-made file has one) is hashed
    by reading the file again."""
    return _read(path, hashed=True)


def _open_regular(path):
    """The file for reading, if it is a plain file: a candidate may have swapped its output for
    a FIFO (an open that never returns), a device or a symbolic link."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise BundleError(f"{path} is not a regular file")
    return os.fdopen(fd, "rb")


def _read(path, *, hashed: bool) -> tuple[list[Any], dict[str, Any], str]:
    with _open_regular(path) as fh:
        prefix = fh.read(8)
        if len(prefix) < 8:
            raise BundleError("truncated bundle")
        (hlen,) = struct.unpack("<Q", prefix)
        if hlen > MAX_HEADER:
            raise BundleError("bad header length")
        header = fh.read(hlen)
        size = os.fstat(fh.fileno()).st_size - 8 - hlen
        items, meta = decode(prefix + header, payload_size=size)
        for item in items:
            if isinstance(item, _Pending):
                fh.seek(8 + hlen + item.offset)
                target = item.flat.view(torch.uint8).numpy()
                if fh.readinto(memoryview(target)) != item.nbytes:
                    raise BundleError("tensor data cut short")
    pending = [i for i in items if isinstance(i, _Pending)]
    digest = ""
    if hashed:
        if _tiles(pending, size):
            blocks = [memoryview(p.flat.view(torch.uint8).numpy()) for p in pending]
            digest = _tree_hash([prefix + header, *blocks])
        else:
            digest = file_hash(path)
    return [i.tensor() if isinstance(i, _Pending) else i for i in items], meta, digest


def _tiles(pending: list[_Pending], size: int) -> bool:
    """Whether the tensors' extents cover the payload exactly, back to back, in item order."""
    at = 0
    for p in pending:
        if p.offset != at:
            return False
        at += p.nbytes
    return at == size


class _Pending:
    """A tensor whose bytes :func:`read` still has to load from the file."""

    def __init__(self, flat: torch.Tensor, shape: list[int], layout: str, offset: int, nbytes: int):
        self.flat, self.shape, self.layout = flat, shape, layout
        self.offset, self.nbytes = offset, nbytes

    def tensor(self) -> torch.Tensor:
        return _shaped(self.flat, self.shape, self.layout)
