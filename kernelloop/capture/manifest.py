"""``capture.json``: where each captured subgraph sits in the user's model.

``kernelloop capture`` writes it next to the problem files it makes; ``kernelloop.patch`` and
``kernelloop apply`` read it. The unit of capture is one *module call*: a submodule whose whole
``forward`` is one fusible subgraph. Only a whole call has an exact mapping from the module's
arguments and state to the problem's inputs, and runs the same code at other shapes, so the
patched module can hand its call to a library kernel or to its own ``forward`` with nothing in
between.

Pure standard library, like the library's manifests: reading a capture never imports torch.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from ..errors import KernelloopError

SCHEMA_VERSION = 1
FILE_NAME = "capture.json"
INPUT_KINDS = ("arg", "param", "buffer")


class CaptureFileError(KernelloopError, ValueError):
    """A ``capture.json`` that cannot be read: missing, malformed, or from a newer kernelloop."""


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    shape: tuple[int, ...]
    dtype: str  # "float32", "int64", ...


@dataclasses.dataclass(frozen=True)
class UnitInput:
    """One input of the problem's ``forward``, in order, and where the patched module finds it."""

    name: str  # the argument's name in the problem file
    kind: str  # "arg": the module's forward argument; "param"/"buffer": the module's own state
    tensor: TensorSpec
    index: int | None = None  # kind "arg": position among the module call's positional args
    # "param"/"buffer": state-dict name relative to the module; "arg" passed by keyword (index
    # None): the keyword
    target: str | None = None


@dataclasses.dataclass(frozen=True)
class Site:
    """One call of a module that computes the subgraph (identical layers share a problem)."""

    module: str  # qualified name in the model ("" for the model itself)
    module_type: str  # "mypkg.blocks.SwiGLU"
    call: int = 0  # which call of that module in one forward, counting from 0


@dataclasses.dataclass(frozen=True)
class Subgraph:
    problem_id: str  # the problem file's stem
    file: str  # the problem file, relative to the capture folder
    kind: str  # "attention", "matmul", "conv", "norm", "softmax", "reduction", "pointwise"
    ops: tuple[str, ...]  # the ATen ops of one call, in order ("linear", "silu", "mul", ...)
    inputs: tuple[UnitInput, ...]
    outputs: tuple[TensorSpec, ...]
    returns_tuple: bool  # the module's forward returns a tuple (else one tensor)
    # Non-tensor positional arguments the call was traced with (baked into the problem); a
    # patched call with other values runs the original forward. Keys are positions.
    constants: dict[str, Any]
    sites: tuple[Site, ...]
    flops: float  # one call
    bytes: float  # one call: every input read and output written once
    estimated_ms: float  # one call, at the roofline of the target GPU
    share: float  # fraction of the model's estimated time spent here, all sites together
    # Keyword arguments the call was traced with: non-tensor values by name (baked in, like
    # ``constants``), and the names that held tensors (those the problem reads are also inputs,
    # kind "arg" with the keyword as target). A patched call runs the library only with exactly
    # these keywords. Captures written before keywords were captured have neither: no keywords.
    keyword_constants: dict[str, Any] = dataclasses.field(default_factory=dict)
    keyword_tensors: tuple[str, ...] = ()
    # Positions of the returned tuple that held None (the problem returns the tensors only;
    # the patched forward puts the Nones back).
    none_outputs: tuple[int, ...] = ()
    # Positions of positional tensor arguments the problem does not read (a timestep embedding
    # a block ignores): a patched call must pass a tensor there too, and the kernel never sees
    # it. Captures written before this was recorded have none.
    unread_args: tuple[int, ...] = ()
    # One call's median milliseconds, measured at its first site when the capture ran on a CUDA
    # device (``measure.py``; the units are then ranked by it); None elsewhere.
    measured_ms: float | None = None


@dataclasses.dataclass(frozen=True)
class Uncovered:
    """Work the capture did not turn into a problem, and why (so the report can say so)."""

    module: str
    ops: tuple[str, ...]
    estimated_ms: float
    why: str


@dataclasses.dataclass(frozen=True)
class Capture:
    model: str  # FILE:FACTORY as given
    inputs: str | None  # FILE:FN as given, or None (the factory file's get_inputs/example_inputs)
    device: str  # where the model was traced: "meta", "cpu", "cuda"
    dtype: str
    gpu: str  # the GPU whose roofline ranked the subgraphs
    total_estimated_ms: float  # the whole model, one forward, at that roofline
    subgraphs: tuple[Subgraph, ...]  # best first
    uncovered: tuple[Uncovered, ...]
    created_at: str
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> str:
        return json.dumps(_plain(dataclasses.asdict(self)), indent=1) + "\n"

    def write(self, folder: Path) -> Path:
        path = Path(folder) / FILE_NAME
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(self.to_json(), encoding="utf-8")
        tmp.replace(path)  # a crash never leaves half a capture.json
        return path

    @classmethod
    def from_dict(cls, d: Any) -> Capture:
        if not isinstance(d, dict):
            raise CaptureFileError(f"capture.json holds a {type(d).__name__}, not an object")
        version = d.get("schema_version")
        if not isinstance(version, int) or version < 1:
            raise CaptureFileError("capture.json has no valid schema_version")
        if version > SCHEMA_VERSION:
            raise CaptureFileError(
                f"capture.json schema {version} is newer than this kernelloop reads "
                f"({SCHEMA_VERSION}): upgrade kernelloop"
            )
        try:
            return cls(
                model=d["model"],
                inputs=d.get("inputs"),
                device=d["device"],
                dtype=d["dtype"],
                gpu=d["gpu"],
                total_estimated_ms=float(d["total_estimated_ms"]),
                subgraphs=tuple(_subgraph(s) for s in d["subgraphs"]),
                uncovered=tuple(
                    Uncovered(u["module"], tuple(u["ops"]), float(u["estimated_ms"]), u["why"])
                    for u in d.get("uncovered", ())
                ),
                created_at=d["created_at"],
                schema_version=version,
            )
        except KeyError as exc:
            raise CaptureFileError(f"capture.json lacks the field {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise CaptureFileError(f"capture.json has a malformed field: {exc}") from None

    @classmethod
    def load(cls, path: Path | str) -> Capture:
        """From a capture folder or its ``capture.json``."""
        path = Path(path)
        if path.is_dir():
            path = path / FILE_NAME
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise CaptureFileError(
                f"no {FILE_NAME} at {path}: run `kernelloop capture FILE:FACTORY -o DIR` first"
            ) from None
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as exc:
            raise CaptureFileError(f"{path} is not valid JSON: {exc}") from None


def _tensor(d: dict) -> TensorSpec:
    return TensorSpec(tuple(int(s) for s in d["shape"]), str(d["dtype"]))


def _subgraph(d: dict) -> Subgraph:
    inputs = []
    for i in d["inputs"]:
        if i["kind"] not in INPUT_KINDS:
            raise CaptureFileError(f"input {i.get('name')!r} has unknown kind {i['kind']!r}")
        inputs.append(
            UnitInput(i["name"], i["kind"], _tensor(i["tensor"]), i.get("index"), i.get("target"))
        )
    return Subgraph(
        problem_id=d["problem_id"],
        file=d["file"],
        kind=d["kind"],
        ops=tuple(d["ops"]),
        inputs=tuple(inputs),
        outputs=tuple(_tensor(o) for o in d["outputs"]),
        returns_tuple=bool(d["returns_tuple"]),
        constants=dict(d.get("constants") or {}),
        sites=tuple(Site(s["module"], s["module_type"], int(s.get("call", 0))) for s in d["sites"]),
        flops=float(d["flops"]),
        bytes=float(d["bytes"]),
        estimated_ms=float(d["estimated_ms"]),
        share=float(d["share"]),
        keyword_constants=dict(d.get("keyword_constants") or {}),
        keyword_tensors=tuple(str(k) for k in d.get("keyword_tensors") or ()),
        none_outputs=tuple(int(i) for i in d.get("none_outputs") or ()),
        unread_args=tuple(int(i) for i in d.get("unread_args") or ()),
        measured_ms=None if d.get("measured_ms") is None else float(d["measured_ms"]),
    )


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
