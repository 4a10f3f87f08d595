"""The op graph the builtin coder's templates match against: values, inputs, ops.

Plain data, built by ``trace.py`` from an exported program and read by every template and by
``sizes.py``; kept apart so that nothing which only reads a graph has to import the tracer.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..errors import KernelloopError


class TraceError(KernelloopError, RuntimeError):
    """The reference could not be traced (data-dependent control flow, unsupported inputs)."""


@dataclasses.dataclass(frozen=True)
class Ref:
    """A tensor value of the graph, by the name of the input or op that produces it."""

    name: str


@dataclasses.dataclass(frozen=True)
class Value:
    shape: tuple[int, ...]
    dtype: str  # "float32", "int8", "bool", ...

    @property
    def rank(self) -> int:
        return len(self.shape)


@dataclasses.dataclass(frozen=True)
class Input:
    name: str  # the graph's placeholder name
    kind: str  # "arg" (a forward argument), "param", "buffer", "constant" (a tensor attribute)
    value: Value | None  # None for a non-tensor forward argument
    position: int | None = None  # for "arg": index into forward's arguments
    target: str | None = None  # for params and buffers: the state-dict name ("linear.weight")


@dataclasses.dataclass(frozen=True)
class Op:
    name: str  # the value it produces is Ref(name)
    op: str  # short ATen name: "relu", "add", "linear", "getitem"
    overload: str  # "default", "Tensor", "Scalar", "dim_IntList", ...
    args: tuple[Any, ...]  # Ref, Python constants, and tuples/lists of them
    kwargs: dict[str, Any]
    out: Value | tuple[Value, ...] | None

    @property
    def value(self) -> Value:
        """The single tensor this op produces (templates only match single-output ops)."""
        if not isinstance(self.out, Value):
            raise TraceError(f"{self.op} does not produce a single tensor")
        return self.out

    def refs(self) -> list[Ref]:
        found: list[Ref] = []
        for a in (*self.args, *self.kwargs.values()):
            if isinstance(a, Ref):
                found.append(a)
            elif isinstance(a, tuple | list):
                found.extend(x for x in a if isinstance(x, Ref))
        return found


@dataclasses.dataclass
class OpGraph:
    inputs: list[Input]
    ops: list[Op]
    outputs: list[Ref]
    forward_args: list[str]  # the reference forward's parameter names, in order
    # view op -> its target shape over run-time sizes, where traces at other sizes told (sizes.py)
    sizes: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    # ops whose numbers change between the traced sizes in a way no rule of sizes.py writes over
    # run-time quantities: templates refuse them rather than bake in the traced number
    unsized: set[str] = dataclasses.field(default_factory=set)

    def op_names(self) -> list[str]:
        return [o.op for o in self.ops]

    def input(self, name: str) -> Input | None:
        return next((i for i in self.inputs if i.name == name), None)

    def producer(self, ref: Ref) -> Op | None:
        return next((o for o in self.ops if o.name == ref.name), None)

    def users(self, ref: Ref) -> list[Op]:
        return [o for o in self.ops if ref in o.refs()]

    def is_output(self, ref: Ref) -> bool:
        return ref in self.outputs

    def value_of(self, ref: Ref) -> Value | None:
        inp = self.input(ref.name)
        if inp is not None:
            return inp.value
        op = self.producer(ref)
        return op.out if op is not None and isinstance(op.out, Value) else None

    def index(self, name: str) -> int:
        return next(i for i, o in enumerate(self.ops) if o.name == name)
