"""Prompt templates (files in ``prompts/``) and the small pieces of text that fill them.

Prompts live as Markdown files so they can be read, diffed and tuned without touching code. Each
uses ``string.Template`` placeholders (``$name``; a literal dollar is ``$$``), which leave the
braces of JSON examples and C++ alone. ``render`` refuses to send a prompt with a hole in it.

``source`` is always the kernel under discussion: the failed candidate (repair modes) or the best
verified one (optimize modes); ``advice``/``diagnosis`` are the Judge's words for the Coder.

| template | placeholders |
|---|---|
| ``coder-initial`` | problem_source, gpu, backend_rules |
| ``coder-repair`` | problem_source, backend_rules, source, error, diagnosis |
| ``coder-optimize`` | problem_source, gpu, backend_rules, source, timing, history, advice |
| ``judge-repair`` | problem_source, source, error |
| ``judge-optimize`` | problem_source, gpu, source, timing, profile, history |
| ``backend-triton``, ``backend-cuda`` | none (rules + a tiny example; fill ``backend_rules``) |

The problem's ``ALLOW_TORCH`` reaches the Coder through ``problem_source`` itself; the caller
should strip ``HOLDOUT`` from it (hold-out sizes are meant to be unseen).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kernelloop.feedback.gpu_specs import GpuSpec

PROMPTS_DIR = Path(__file__).with_name("prompts")
BACKENDS = ("triton", "cuda")  # the backends the Coder writes (cuda-inline is evaluation-only)
NO_GPU = "no GPU here: correctness under the Triton interpreter, no timing"


def names() -> list[str]:
    """Every template name (file stem in ``prompts/``)."""
    return sorted(p.stem for p in PROMPTS_DIR.glob("*.md"))


@functools.cache
def _template(name: str) -> Template:
    path = PROMPTS_DIR / f"{name}.md"
    if not path.is_file():
        raise FileNotFoundError(f"no prompt template {name!r} in {PROMPTS_DIR}; have {names()}")
    return Template(path.read_text())


def placeholders(name: str) -> set[str]:
    """The ``$names`` a template needs."""
    return {m.group("named") or m.group("braced") for m in _matches(_template(name))} - {None}


def _matches(template: Template) -> list[re.Match[str]]:
    return list(template.pattern.finditer(template.template))


def render(name: str, **values: object) -> str:
    """Fill template ``name`` with ``values``; KeyError names the first missing placeholder.

    Values are inserted as text once (a ``$`` inside a value stays as it is).
    """
    try:
        return _template(name).substitute({k: str(v) for k, v in values.items()})
    except KeyError as e:
        missing = e.args[0]
        raise KeyError(
            f"prompt {name!r} needs a value for ${missing}: pass render({name!r}, {missing}=...)"
        ) from None


def backend_rules(backend: str) -> str:
    """The rules and tiny example for the Coder's backend (``backend_rules`` in coder prompts)."""
    if backend not in BACKENDS:
        raise ValueError(f"the Coder writes {' or '.join(BACKENDS)} kernels, not {backend!r}")
    return render(f"backend-{backend}")


def gpu_brief(spec: GpuSpec | None) -> str:
    """A few lines on the target GPU: what bounds a kernel there (the ``gpu`` placeholder)."""
    if spec is None:
        return NO_GPU
    cc = ".".join(map(str, spec.compute_capability))
    estimated = " (estimated from device attributes, not a datasheet)" if spec.generic else ""
    fp8 = f", fp8 {spec.fp8_tflops:g}" if spec.fp8_tflops else ""
    return "\n".join(
        [
            f"- {spec.name}{estimated}: compute capability {cc}, {spec.sms} SMs at "
            f"{spec.boost_clock_mhz:g} MHz boost",
            f"- DRAM bandwidth {spec.mem_bandwidth_gbs:g} GB/s; L2 {_bytes(spec.l2_bytes)}; "
            f"shared memory {_bytes(spec.smem_per_sm_bytes)} per SM; "
            f"{spec.regs_per_sm} registers per SM",
            f"- Peak dense TFLOP/s: fp32 {spec.fp32_tflops:g} (CUDA cores), tf32 "
            f"{spec.tf32_tflops:g}, fp16 {spec.fp16_tflops:g}, bf16 {spec.bf16_tflops:g}{fp8} "
            "(tensor cores)",
        ]
    )


def _bytes(n: int) -> str:
    if n >= 1 << 20 and n % (1 << 20) == 0:
        return f"{n >> 20} MiB"
    if n >= 1 << 10:
        return f"{n / 1024:g} KiB"
    return f"{n} B"
