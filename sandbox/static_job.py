"""A sandbox worker that compiles a Triton candidate's kernels for a GPU target, running none.

On a machine without a GPU the evaluation runs Triton under the interpreter, which compiles
nothing, so registers, spills and shared memory are unknown. The evaluation worker records each
launch's argument types and constexprs (``Verdict.launches``); this worker, a fresh process
without ``TRITON_INTERPRET`` (a process that imported Triton interpreted cannot compile), hands
them to Triton's compiler with the kernels re-declared from the candidate's source
(``feedback.candidate_resources``). The compiler's front end evaluates ``constexpr`` expressions
of code nobody vetted, hence a sandbox worker, with the same limits and network isolation as the
candidate's own.

    compile_recorded(source, launches, arch="sm_90") -> list[StaticResources]
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

from . import channel, limits
from .frames import STATIC as STATIC_FRAMES

TIMEOUT_S = 300.0  # a few kernels; each compile is seconds of one core


def signatures(launches: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """One compilable launch per kernel: the first, which the first main-size trial made."""
    found: dict[str, dict[str, Any]] = {}
    for rec in launches:
        if not rec.get("unsupported") and rec["kernel"] not in found:
            found[rec["kernel"]] = dict(rec["args"])
    return found


def compile_recorded(
    source: str,
    launches: list[dict[str, Any]],
    *,
    arch: str = "sm_90",
    sandbox: str | None = None,
    timeout_s: float = TIMEOUT_S,
) -> list:
    """The candidate's Triton kernels compiled for ``arch`` with the argument types of their
    recorded launches, in a sandbox worker; kernels without a usable record say why."""
    from .. import settings
    from ..feedback.static_resources import StaticResources
    from . import backends, launch

    cfg = settings.get()
    base = Path(tempfile.mkdtemp(prefix="kernelloop-static-"))
    try:
        outcome, frames, bad = launch.run_worker(
            "kernelloop.sandbox.static_job",
            {
                "source": source,
                "signatures": signatures(launches),
                "arch": arch,
                "limits": limits.Limits(
                    memory_bytes=cfg.memory_cap_bytes,
                    cpu_seconds=int(timeout_s * 2),
                    file_bytes=1 << 30,
                    processes=64,  # Triton runs ptxas
                ).to_dict(),
            },
            workdir=base,
            wrapped_by=backends.select(sandbox or cfg.sandbox),
            gpu=False,
            timeout_s=timeout_s,
            memory_cap=cfg.memory_cap_bytes,
            env={"TRITON_INTERPRET": "0"},
            # Triton's front end evaluates the candidate's constexpr expressions in this worker
            schema=STATIC_FRAMES,
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)
    found = {f["type"]: f for _, f in frames}
    if "static" in found:
        try:  # the schema checks that these are objects; their fields are checked here
            return [StaticResources.from_dict(d) for d in found["static"]["kernels"]]
        except (TypeError, ValueError) as exc:
            raise RuntimeError(f"the static compile reported malformed kernels: {exc}") from None
    why = found.get("error", {}).get("message") or bad or outcome.stderr.strip()[-300:]
    if outcome.timed_out:
        why = f"timed out after {timeout_s:.0f} s"
    raise RuntimeError(f"the static compile failed: {why or 'no result'}")


def main(argv: list[str]) -> int:
    job = json.loads(Path(argv[1]).read_text())
    if "channel_path" in job:  # a container's FIFO channel
        job["channel_fd"] = channel.open_fifo_writer(job["channel_path"])
    if job.get("isolate_network"):
        limits.isolate_network()
    limits.apply(limits.Limits(**job["limits"]))
    out = channel.Writer(job["channel_fd"])
    try:
        from ..feedback.candidate_resources import from_candidate_source

        found = from_candidate_source(
            job["source"], "triton", signatures=job["signatures"], arch=job["arch"]
        )
    except Exception as exc:
        out.send("error", message=f"{type(exc).__name__}: {exc}", trace=traceback.format_exc())
        return 1
    out.send("static", kernels=[r.to_dict() for r in found])
    out.send("done")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
