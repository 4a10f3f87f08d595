"""Moving tensors between trusted code and workers without pickle.

A bundle is ``[8-byte little-endian header length][JSON header][raw bytes]``. The header lists
items; each is a tensor (dtype, shape, offset, nbytes) or a JSON value. The trusted side rebuilds
tensors with ``torch.frombuffer`` after validating every field, so nothing a candidate writes can
run code or smuggle a ``Tensor`` subclass (threat row 5) into the orchestrator.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import torch

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


class BundleError(ValueError):
    """The bytes are not a well-formed bundle."""


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def dtype_from_name(name: str) -> torch.dtype:
    try:
        return _DTYPES[name]
    except KeyError:
        raise BundleError(f"unsupported dtype {name!r}") from None


def encode(items: list[Any], meta: dict[str, Any] | None = None) -> bytes:
    """Serialise a flat list of tensors and JSON values (tensors are copied to CPU)."""
    entries: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    offset = 0
    for item in items:
        if isinstance(item, torch.Tensor):
            cpu = item.detach().to("cpu").contiguous()
            raw = cpu.reshape(-1).view(torch.uint8).numpy().tobytes() if cpu.numel() else b""
            entries.append(
                {
                    "kind": "tensor",
                    "dtype": dtype_name(cpu.dtype),
                    "shape": list(cpu.shape),
                    "offset": offset,
                    "nbytes": len(raw),
                }
            )
            chunks.append(raw)
            offset += len(raw)
        else:
            entries.append({"kind": "value", "value": item})
    header = json.dumps({"items": entries, "meta": meta or {}}).encode()
    return struct.pack("<Q", len(header)) + header + b"".join(chunks)


def decode(data: bytes) -> tuple[list[Any], dict[str, Any]]:
    """Inverse of :func:`encode`, validating every field before touching the payload."""
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
    items: list[Any] = []
    for entry in header["items"]:
        if not isinstance(entry, dict):
            raise BundleError("item is not an object")
        if entry.get("kind") == "value":
            items.append(entry.get("value"))
            continue
        items.append(_tensor_from(entry, payload))
    meta = header.get("meta") if isinstance(header.get("meta"), dict) else {}
    return items, meta


def _tensor_from(entry: dict[str, Any], payload: memoryview) -> torch.Tensor:
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
    if numel * itemsize != nbytes or offset + nbytes > len(payload):
        raise BundleError("tensor extent does not match its shape")
    if numel == 0:
        return torch.empty(shape, dtype=dtype)
    raw = bytearray(payload[offset : offset + nbytes])  # own the memory: writable, no aliasing
    return torch.frombuffer(raw, dtype=torch.uint8).view(dtype).reshape(shape)


def write(path, items: list[Any], meta: dict[str, Any] | None = None) -> None:
    with open(path, "wb") as fh:
        fh.write(encode(items, meta))


def read(path) -> tuple[list[Any], dict[str, Any]]:
    with open(path, "rb") as fh:
        return decode(fh.read())
