"""``kernelloop capture``: the command over ``kernelloop.capture`` (a table, or the JSON)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .cli_common import JsonOpt, fail

console = Console()


def capture_cmd(
    model: Annotated[
        str,
        typer.Argument(
            metavar="FILE:FACTORY",
            help="A Python file and a function in it that takes no argument and returns the "
            "nn.Module, e.g. examples/models/tiny_llama.py:make_block.",
        ),
    ],
    out: Annotated[
        Path, typer.Option("-o", "--out", help="Folder for the problem files and capture.json.")
    ],
    inputs: Annotated[
        str | None,
        typer.Option(
            metavar="FILE:FN",
            help="A function returning the forward's positional arguments (default: get_inputs "
            "or example_inputs in the factory's file).",
        ),
    ] = None,
    top: Annotated[int, typer.Option(min=1, help="Keep the N units of largest time.")] = 8,
    device: Annotated[
        str,
        typer.Option(
            help="Where the model is built and traced: meta (no memory, nothing computed; "
            "weights are drawn at init scale), cpu or cuda."
        ),
    ] = "cpu",
    dtype: Annotated[
        str | None,
        typer.Option(help="Cast the model to float32, float16 or bfloat16 (default: its own)."),
    ] = None,
    gpu: Annotated[
        str | None,
        typer.Option(help="GPU whose roofline ranks the units, e.g. 'H100 SXM' (default H100)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Capture a PyTorch model's hot spots as problems for the loop.

    Runs one forward of the model built by FILE:FACTORY, chooses units (module calls whose whole
    forward is one fusible subgraph: at most 5 heavy ops such as matmuls, convolutions and
    attention, and 40 compute ops; bigger modules are split into their submodules; identical
    layers share one problem), ranks them by their roofline time on the target GPU (with
    --device cuda, the top N are then timed where they run and ranked by that), and writes
    the top N into OUT as KernelBench-format problem files (NN_kind_module.py, functional: the
    module's parameters are inputs) with capture.json, which says where each one sits in the
    model. Continue with:

        kernelloop problems check OUT
        kernelloop optimize OUT --coder builtin
    """
    from .capture import CaptureError, capture

    status = console.status("capturing...") if not as_json else None
    try:
        if status:
            with status:
                result = capture(
                    model,
                    inputs=inputs,
                    out_dir=out,
                    top=top,
                    device=device,
                    dtype=dtype,
                    gpu=gpu,
                    progress=lambda msg: status.update(escape(msg)),
                )
        else:
            result = capture(
                model, inputs=inputs, out_dir=out, top=top, device=device, dtype=dtype, gpu=gpu
            )
    except CaptureError as exc:
        raise fail(escape(str(exc))) from None
    if as_json:
        sys.stdout.write(result.to_json())
        return
    table = Table(title=f"{model} on {result.device}, {result.dtype}: {result.gpu} roofline")
    # Measured on the GPU the capture ran on (all sites together), where it ran on one.
    measured = any(s.measured_ms is not None for s in result.subgraphs)
    cols = ("rank", "problem", "kind", "module(s)", "sites", "est. us")
    cols += ("measured us",) * measured + ("share",)
    for col in cols:
        table.add_column(
            col, justify="left" if col in ("problem", "kind", "module(s)") else "right"
        )
    for rank, s in enumerate(result.subgraphs, 1):
        modules = ", ".join(site.module or "(model)" for site in s.sites[:3])
        if len(s.sites) > 3:
            modules += f", +{len(s.sites) - 3}"
        table.add_row(
            str(rank),
            s.problem_id,
            s.kind,
            escape(modules),
            str(len(s.sites)),
            f"{s.estimated_ms * len(s.sites) * 1e3:.2f}",
            *(
                [f"{s.measured_ms * len(s.sites) * 1e3:.2f}" if s.measured_ms is not None else "-"]
                if measured
                else []
            ),
            f"{s.share:.1%}",
        )
    console.print(table)
    covered = sum(s.share for s in result.subgraphs)
    left = sum(u.estimated_ms for u in result.uncovered)
    console.print(
        f"model: {result.total_estimated_ms * 1e3:.2f} us per forward at the roofline; "
        f"the problems cover {covered:.1%}, {len(result.uncovered)} uncovered entries "
        f"{left * 1e3:.2f} us"
    )
    for u in result.uncovered:
        console.print(
            f"  uncovered {escape(u.module or '(model)')}: {escape(', '.join(u.ops[:6]))}"
            f"{', ...' if len(u.ops) > 6 else ''} ({u.estimated_ms * 1e3:.2f} us): {escape(u.why)}"
        )
    console.print(
        f"wrote {len(result.subgraphs)} problems and capture.json to {escape(str(out))}; next: "
        f"kernelloop optimize {escape(str(out))} --coder builtin"
    )
