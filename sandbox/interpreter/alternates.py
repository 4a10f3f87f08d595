"""One trial again, the ways a GPU may run it and the interpreter by itself does not.

After a trial's call the worker runs the model again on fresh copies of the same inputs (new
storage, so nothing keyed on ``data_ptr`` replays the first result):

- ``order:reversed``: every launch runs its grid's programs last first. A kernel whose programs
  hand data to each other through global memory (program j reads what j-1 stored) is right in
  the interpreter's fixed order and racy on a GPU, where programs run in any order (row 30);
- ``autotune:config i``: every multi-config autotuner takes its i-th pruned config. The call
  itself ran config 0 (the CPU benchmarker keeps the first), a GPU autotuner may keep any (row 31).

Each run's outputs become an extra output bundle of the trial (``alternates`` in its frame) that
the judge compares with the same reference. Each run is traced and op-recorded like the call
itself, so a candidate cannot keep its real work for the runs it guesses are extra.

Budget: the reversed run on every trial (CPU sizes take milliseconds); autotune configs on the
first trial always (at most MAX_CONFIGS), on hold-out trials (other shapes, so other configs may
be pruned) while configs x forward time stays under HOLDOUT_CONFIG_BUDGET_S.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

from . import autotune, forced_config, program_order, unsupported_reason

MAX_CONFIGS = 16  # the frame schema allows 64 alternates per trial
HOLDOUT_CONFIG_BUDGET_S = 10.0


@dataclasses.dataclass
class Outcome:
    records: list[dict] = dataclasses.field(default_factory=list)  # the frame's `alternates`
    notes: list[str] = dataclasses.field(default_factory=list)  # what was skipped, and why
    torch_ops: list[str] = dataclasses.field(default_factory=list)  # beyond the allowed ones
    untracked: list[dict] = dataclasses.field(default_factory=list)  # store coverage findings
    unchecked: str = ""  # why a run's store coverage could not be checked (the judge decides)
    failure: dict | None = None  # {"kind", "error"} when a run failed the candidate


def begin_trial() -> None:
    """Before a trial's call: forget the autotuners the previous call ran."""
    autotune.SEEN.clear()


def run(
    call: Callable[[], tuple],
    write: Callable[[str, list], str],
    describe: Callable[[BaseException], str],
    *,
    trial: dict,
    first: bool,
    forward_s: float,
) -> Outcome:
    """``call()`` runs the model once on fresh inputs as the worker's own call does (returning
    what forward returned, the disallowed ops and the store coverage, raising what the model
    raises); ``write(path, outputs)`` writes a bundle and returns its hash."""
    done = Outcome()
    runs: list[tuple[str, str, Callable, str]] = [
        ("order:reversed", "order-reversed", lambda: program_order("reversed"), "program_order")
    ]
    budget = math.inf if first else HOLDOUT_CONFIG_BUDGET_S if trial["variant"] != "main" else 0
    count = min(autotune.SEEN.count(), MAX_CONFIGS)
    if count > 1 and budget:
        if forward_s * (count - 1) <= budget:
            # Config 0 is what the call itself ran.
            runs += [
                (autotune.SEEN.label(i), f"autotune-{i}", lambda i=i: forced_config(i), "autotune")
                for i in range(1, count)
            ]
        else:
            done.notes.append(
                f"trial {trial['name']}: autotune configs 1-{count - 1} not checked, about "
                f"{forward_s * (count - 1):.0f} s over its {budget:.0f} s budget"
            )
    for label, suffix, context, kind in runs:
        try:
            with context():
                out, ops, coverage = call()
            outputs = list(out) if isinstance(out, tuple | list) else [out]
            if coverage is None:  # only when forward returned something other than tensors
                raise TypeError("forward returned something other than exactly torch.Tensor")
        except Exception as exc:
            if kind == "autotune" and autotune.rejected_when_compiled(exc):
                done.notes.append(f"{label[:120]}: skipped, a GPU compile rejects it too")
                continue
            failed = "program_order" if kind == "program_order" else "autotune_config"
            if unsupported_reason(exc):  # inline PTX and the like fail in any order or config
                failed = "interpreter_unsupported"
            done.failure = {"kind": failed, "error": f"{label}: {describe(exc)}"}
            return done
        done.torch_ops += [op for op in ops if op not in done.torch_ops]
        done.untracked += [{**u, "run": label} for u in coverage["untracked"]]
        if not coverage["checked"]:
            done.unchecked = done.unchecked or f"{label[:120]}: {coverage['note']}"
        path = f"out/{trial['name']}.{suffix}.bin"
        done.records.append({"label": label, "output": path, "output_sha256": write(path, outputs)})
    return done
