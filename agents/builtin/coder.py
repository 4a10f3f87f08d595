"""The builtin Coder: the template plan's kernels, with the configs the builtin judge chose.

Round 0 writes the default config of every segment (slot 0) and, with K > 1, one-step
neighbours of the main segment's default. Later rounds write the judge's proposals, each a
config of the main segment on top of the best candidate's configs. A reference no template
covers halts the problem with "no template for: <ops>"; it is an outcome, not a crash.
"""

from __future__ import annotations

import threading
from typing import Any

from ..roles import CoderRequest, Proposed
from . import module, search
from .plan import Plan, main_segment, plan
from .templates import BY_NAME
from .trace import OpGraph, TraceError, trace


class BuiltinCoder:
    name = "builtin"

    def __init__(self) -> None:
        self._plans: dict[str, Any] = {}
        self._lock = threading.Lock()  # K slots of a round propose concurrently

    def planned(self, ctx) -> tuple[OpGraph, Plan, dict]:
        """The problem's graph and plan at the campaign's size (traced once per problem)."""
        overrides = ctx.overrides
        with self._lock:
            if ctx.problem.id not in self._plans:
                try:
                    graph = trace(ctx.problem, overrides)
                    self._plans[ctx.problem.id] = (graph, plan(graph), overrides)
                except TraceError as exc:
                    self._plans[ctx.problem.id] = exc
            found = self._plans[ctx.problem.id]
        if isinstance(found, TraceError):
            raise found
        return found

    def propose(self, request: CoderRequest) -> Proposed:
        ctx, state = request.ctx, request.state
        idx, k = request.index, request.count
        try:
            graph, pl, overrides = self.planned(ctx)
        except TraceError as exc:
            return Proposed(halt=f"cannot trace the reference: {exc}")
        except Exception as exc:  # a problem the coder cannot handle ends it, not the campaign
            return Proposed(halt=f"builtin coder failed: {type(exc).__name__}: {exc}"[:500])
        if not pl.ok:
            return Proposed(halt=pl.describe())
        configs = [BY_NAME[s.template].default(s) for s in pl.segments]
        main = main_segment(pl.segments)
        if state["mode"] == "initial":
            if idx and main is not None:
                knobs = BY_NAME[pl.segments[main].template].knobs
                # Nothing is measured yet: treat the default as the best so far, so the extra
                # slots get its nearest neighbours (the judge takes over from round 1).
                start = [search.Trial(configs[main], True, 1.0)]
                alternatives = search.next_configs(knobs, start, search.Feedback(), k - 1)
                if idx - 1 >= len(alternatives):
                    return Proposed(skip=True)
                configs[main] = alternatives[idx - 1].config
            elif idx:
                return Proposed(skip=True)
        else:
            proposals = (state.get("advice") or {}).get("proposals") or []
            if idx >= len(proposals) or request.parent is None:
                return Proposed(skip=True)
            # The parent's configs as the run store keeps them; a parent stored before they were
            # kept (an older run, resumed) has none, and its segments start from the defaults.
            stored = (request.parent.builtin_config or {}).get("configs")
            configs = list(stored or configs)
            configs[proposals[idx]["segment"]] = proposals[idx]["config"]
        try:
            source = module.generate(ctx.problem, graph, pl, configs, overrides)
            return Proposed(source=source, builtin_config=module.record(pl, configs))
        except module.EmitError as exc:
            return Proposed(halt=f"no template: {exc}")
        except Exception as exc:  # as above: named in the problem's stop reason
            return Proposed(halt=f"builtin coder failed: {type(exc).__name__}: {exc}"[:500])
