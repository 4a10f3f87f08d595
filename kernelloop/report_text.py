"""Human-readable rendering of a verdict for the terminal (the JSON form is ``--json``)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .sandbox.verdict import Verdict


def _fmt_ms(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4f} ms"


def print_verdict(console: Console, v: Verdict) -> None:
    status = "[bold green]ACCEPTED[/bold green]" if v.accepted else "[bold red]REJECTED[/bold red]"
    console.print(
        f"{status}  {v.problem_id}  size={v.size}  backend={v.backend}  "
        f"device={v.device}  sandbox={v.sandbox}"
    )
    for r in v.reasons:
        console.print(f"  [red]{r.code}[/red]: {escape(r.message)}")  # k[grid] is no markup
    if v.build and v.build.ok:
        console.print(f"  build: ok ({v.build.seconds:.2f} s)")
    for name, sized in v.sizes.items():  # the sizes the trials ran at
        shown = ", ".join(f"{k}={val!r}" for k, val in sized.items()) or "as the file declares"
        console.print(f"  size {name}: {escape(shown)}")
    if {"NOT_RUN_NO_GPU", "INTERPRETER_UNSUPPORTED"} & set(v.codes):
        pass  # inconclusive (no GPU; a kernel the interpreter cannot run): the reason says it all
    elif v.correctness and v.correctness.trials:
        table = Table(title="correctness", show_edge=False)
        for col in ("trial", "ok", "max abs err", "max rel err", "note"):
            table.add_column(col)
        for t in v.correctness.trials:
            table.add_row(
                t.name,
                "yes" if t.passed else "[red]no[/red]",
                "" if t.max_abs_err is None else f"{t.max_abs_err:.2e}",
                "" if t.max_rel_err is None else f"{t.max_rel_err:.2e}",
                escape(t.message[:80]),
            )
        console.print(table)
    if v.timing:
        t = v.timing
        c = t.candidate
        console.print(
            f"  candidate: median {_fmt_ms(c.median)} (IQR {c.iqr:.4f}, n={c.n})"
            f"  eager {_fmt_ms(t.eager.median)}"
            + (f"  compile {_fmt_ms(t.compiled.median)}" if t.compiled else "")
        )
        s = t.speedup_eager
        console.print(
            f"  speedup vs eager {s.point:.2f}x [{s.low:.2f}, {s.high:.2f}] 95% CI"
            + (
                f", vs compile {t.speedup_compile.point:.2f}x "
                f"[{t.speedup_compile.low:.2f}, {t.speedup_compile.high:.2f}]"
                if t.speedup_compile
                else ""
            )
        )
        if t.achieved_gbps is not None:
            console.print(
                f"  achieved {t.achieved_gbps:.0f} GB/s, {t.achieved_tflops:.2f} TFLOP/s"
                f", {100 * (t.fraction_of_peak or 0):.0f}% of roofline on {t.gpu}"
            )
    elif v.timing_note:
        console.print(f"  timing: {v.timing_note}")
    for note in v.notes:  # checks skipped, and what a CPU verdict does not prove
        console.print(f"  note: {escape(note)}")
    phases = ", ".join(f"{k} {s:.1f}s" for k, s in v.phases.items())
    console.print(f"  phases: {phases}")
    slowest = sorted(v.phase_detail.items(), key=lambda kv: -kv[1])[:4]
    if slowest:  # the steps worth making faster
        console.print("  slowest steps: " + ", ".join(f"{k} {s:.2f}s" for k, s in slowest))
