"""Page models: what each dashboard page shows, built from run-store data.

The ``*_page`` functions are pure: plain rows and dicts in (as :class:`RunStore`'s read methods
return them), one dict out, so tests can build a page from any data without a server. The
``read_*`` functions of :mod:`.reads` gather what a page needs from a store and hand it to the
builder here; nothing in this module opens a store or a file.

Speedups are ``{point, low, high}`` dicts (the verdict's bootstrap interval); times are ms.
"""

from __future__ import annotations

import difflib
from typing import Any

from ..runs.report import coder_call_key

FAST_P_MAX = 3.0
FAST_P_STEP = 0.05
FAST_P_DEFINITION = (
    "fast_p is the share of this run's problems that have an accepted candidate whose speedup "
    "over eager PyTorch (point estimate, the median-based ratio of the verdict's timing) is "
    "greater than p. Problems without an accepted, GPU-timed candidate never count as fast. "
    "fast_0 is the share of problems with an accepted, timed kernel at all."
)
FAST_1_NOTE = (
    "The fast_1 score above is stricter than the curve at p = 1: it counts a problem only when "
    "the lower bound of its best candidate's speedup interval is above 1.0."
)
RECENT_EVENTS = 30


# --- helpers shared by the pages ----------------------------------------------------------------
def interval(row: dict, column: str) -> dict | None:
    """``{point, low, high}`` from a candidate row's three columns, or None when untimed."""
    if row.get(column) is None:
        return None
    return {"point": row[column], "low": row[f"{column}_low"], "high": row[f"{column}_high"]}


def result_label(accepted: bool | None) -> str:
    """accepted | rejected | pending (not evaluated yet)."""
    if accepted is None:
        return "pending"
    return "accepted" if accepted else "rejected"


def fast_p_curve(
    bests: list[dict | None], max_p: float = FAST_P_MAX, step: float = FAST_P_STEP
) -> list[dict]:
    """``[{p, share, count}]`` for p = 0, step, ..., max_p (see :data:`FAST_P_DEFINITION`).

    ``bests`` holds one entry per problem: its best accepted candidate (:func:`best_dict`, the
    highest point speedup among accepted ones) or None.
    """
    points = [b["speedup_eager"]["point"] for b in bests if b and b.get("speedup_eager")]
    n = len(bests)
    steps = round(max_p / step)
    curve = []
    for i in range(steps + 1):
        p = round(i * step, 10)
        count = sum(point > p for point in points)
        curve.append({"p": p, "count": count, "share": count / n if n else 0.0})
    return curve


def candidate_tree(candidates: list[dict]) -> list[dict]:
    """Candidates as a forest, parent -> children: ``[{candidate, children: [...]}]``.

    A candidate whose parent is not in the list (or that has none) is a root. Children keep the
    order of ``candidates`` (round, then index).
    """
    ids = {c["candidate_id"] for c in candidates}
    children: dict[str | None, list[dict]] = {}
    for c in candidates:
        parent = c["parent_id"] if c["parent_id"] in ids else None
        children.setdefault(parent, []).append(c)

    def grow(parent: str | None, seen: frozenset[str]) -> list[dict]:
        nodes = []
        for c in children.get(parent, []):
            cid = c["candidate_id"]
            if cid in seen:  # a cycle cannot come from the campaign; never loop on one anyway
                continue
            nodes.append({"candidate": c, "children": grow(cid, seen | {cid})})
        return nodes

    return grow(None, frozenset())


def unified_diff(old: str, new: str, old_name: str, new_name: str) -> str:
    """A unified diff of two sources, 3 lines of context (empty when they are equal)."""
    lines = difflib.unified_diff(
        old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile=old_name,
        tofile=new_name,
        n=3,
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def run_devices(candidates: list[dict]) -> list[str]:
    """The devices the candidates were evaluated on, first seen first."""
    return list(dict.fromkeys(c["device"] for c in candidates if c.get("device")))


def _run_header(summary: dict, devices: list[str], last_activity: str | None = None) -> dict:
    """The facts every page of a run shows at the top."""
    options = summary["config"].get("options") or {}
    return {
        "run_id": summary["run_id"],
        "status": summary["status"],
        "created_at": summary["created_at"],
        "finished_at": summary["finished_at"],
        "last_activity": last_activity,
        "minutes": summary["minutes"],
        "models": summary["models"],
        "coder": summary["config"].get("coder"),
        "judge": summary["config"].get("judge"),
        "options": {k: v for k, v in options.items() if v not in (None, {}, [])},
        "devices": devices,
        "kernelloop_version": summary["kernelloop_version"],
        "spend": summary["spend"],
        "refresh": summary["status"] == "running",
    }


# --- campaigns -----------------------------------------------------------------------------------
def campaign_row(summary: dict, devices: list[str]) -> dict:
    """One line of the campaigns list."""
    return {
        "run_id": summary["run_id"],
        "status": summary["status"],
        "created_at": summary["created_at"],
        "minutes": summary["minutes"],
        "problems": [p["problem_id"] for p in summary["problems"]],
        "n_problems": summary["n_problems"],
        "models": summary["models"],
        "correct_pct": summary["correct_pct"],
        "fast_1": summary["fast_1"],
        "geomean_speedup_eager": summary["geomean_speedup_eager"],
        "geomean_speedup_compile": summary["geomean_speedup_compile"],
        "timed_problems": summary["timed_problems"],
        "compile_timed_problems": summary["compile_timed_problems"],
        "spend": summary["spend"],
        "candidates": summary["candidates"],
        "accepted": summary["accepted"],
        "devices": devices,
        "error": None,
    }


def unreadable_row(run_id: str, error: str) -> dict:
    return {"run_id": run_id, "status": "unreadable", "error": error, "created_at": None}


def campaigns_page(rows: list[dict], run_dir: str) -> dict:
    """The list of runs, newest first."""
    rows = sorted(rows, key=lambda r: (r["created_at"] or "", r["run_id"]), reverse=True)
    return {
        "run_dir": run_dir,
        "runs": rows,
        "refresh": any(r["status"] == "running" for r in rows),
    }


# --- one campaign --------------------------------------------------------------------------------
def campaign_page(
    summary: dict,
    candidates: list[dict],
    events: list[dict],
    last_activity: str | None = None,
) -> dict:
    """The run's scores, one row per problem, the fast_p curve and spend per problem."""
    problems = []
    for p in summary["problems"]:
        best = p["best"]
        problems.append(
            {
                "problem_id": p["problem_id"],
                "status": p["status"],
                "stop_reason": p["stop_reason"],
                "rounds": p["rounds"],
                "candidates": p["candidates"],
                "accepted": p["accepted"],
                "evaluated": p["evaluated"],
                "best": best,
                "spend": p["spend"],
                "minutes": p["minutes"],
            }
        )
    bests = [p["best"] for p in summary["problems"]]
    return {
        "run": _run_header(summary, run_devices(candidates), last_activity),
        "scores": {
            key: summary[key]
            for key in (
                "n_problems",
                "candidates",
                "evaluated",
                "accepted",
                "correct_pct",
                "fast_1",
                "geomean_speedup_eager",
                "geomean_speedup_compile",
                "timed_problems",
                "compile_timed_problems",
            )
        },
        "problems": problems,
        "fast_p": fast_p_curve(bests),
        "fast_p_definition": FAST_P_DEFINITION,
        "fast_1_note": FAST_1_NOTE,
        "events": list(reversed(events[-RECENT_EVENTS:])),
    }


# --- one problem ---------------------------------------------------------------------------------
def problem_page(
    summary: dict,
    problem_id: str,
    rows: list[dict],
    advice: list[dict],
    events: list[dict],
    reference: dict | None,
) -> dict | None:
    """Speedup per round, the candidate tree and table, the Judge's advice and the reference.

    ``rows`` are this problem's :func:`~kernelloop.runs.report.candidates_with_calls` (candidates
    with their Coder call's tokens and cost). None when the run has no such problem.
    """
    found = [p for p in summary["problems"] if p["problem_id"] == problem_id]
    if not found:
        return None
    p = found[0]
    cands = []
    for r in rows:
        cands.append(
            {
                **r,
                "result": result_label(r["accepted"]),
                "speedup_eager": interval(r, "speedup_eager"),
                "speedup_compile": interval(r, "speedup_compile"),
                "is_best": bool(p["best"]) and p["best"]["candidate_id"] == r["candidate_id"],
            }
        )
    by_round: dict[int, dict] = {}
    for c in cands:
        bucket = by_round.setdefault(
            c["round"], {"round": c["round"], "accepted": 0, "rejected": 0, "pending": 0}
        )
        bucket[c["result"]] += 1
    timed = [c for c in cands if c["accepted"] and c["speedup_eager"]]
    best_so_far, best = [], None
    for rnd in sorted(by_round):
        for c in (c for c in timed if c["round"] == rnd):
            if best is None or c["speedup_eager"]["point"] > best:
                best = c["speedup_eager"]["point"]
        best_so_far.append({"round": rnd, "speedup": best})
    return {
        "run": _run_header(summary, run_devices(rows)),
        "problem": {
            "problem_id": problem_id,
            "status": p["status"],
            "stop_reason": p["stop_reason"],
            "rounds": p["rounds"],
            "spend": p["spend"],
            "minutes": p["minutes"],
            "best": p["best"],
            "n_candidates": p["candidates"],
            "accepted": p["accepted"],
        },
        "candidates": cands,
        "tree": candidate_tree(cands),
        "rounds": [by_round[r] for r in sorted(by_round)],
        "timed": [
            {"candidate_id": c["candidate_id"], "round": c["round"], **c["speedup_eager"]}
            for c in timed
        ],
        "best_so_far": [b for b in best_so_far if b["speedup"] is not None],
        "untimed_devices": sorted({c["device"] for c in cands if c["accepted"] and c["device"]})
        if not timed
        else [],
        "advice": advice,
        "events": events,
        "reference": reference,
    }


# --- one candidate -------------------------------------------------------------------------------
def _advice_about(candidate: dict, siblings: list[dict], advice: list[dict]) -> list[dict]:
    """The Judge's advice on this candidate: optimize advice names it; repair advice names no
    candidate and is about the round's first rejected one (the one the Judge was shown)."""
    rejected = [s for s in siblings if s["round"] == candidate["round"] and s["accepted"] is False]
    first_rejected = min(rejected, key=lambda s: s["idx"])["candidate_id"] if rejected else None
    out = []
    for a in advice:
        if a["candidate_id"] == candidate["candidate_id"]:
            out.append(a)
        elif (
            a["candidate_id"] is None
            and a["mode"] == "repair"
            and a["round"] == candidate["round"]
            and first_rejected == candidate["candidate_id"]
        ):
            out.append(a)
    return out


def timing_model(timing: dict | None, gpu_bandwidth_gbs: float | None) -> dict | None:
    """The verdict's timing with the roofline position spelled out (None when untimed)."""
    if not timing:
        return None
    cand = timing["candidate"]
    floor = timing.get("roofline_floor_ms")
    gbps = timing.get("achieved_gbps")
    return {
        **timing,
        "bandwidth_share": gbps / gpu_bandwidth_gbs if gbps and gpu_bandwidth_gbs else None,
        "gpu_bandwidth_gbs": gpu_bandwidth_gbs,
        "floor_ratio": cand["median"] / floor if floor else None,  # x slower than the floor
    }


def candidate_page(
    summary: dict,
    row: dict,
    verdict: dict | None,
    source: str | None,
    parent_source: str | None,
    siblings: list[dict],
    advice: list[dict],
    calls: list[dict],
    build_log: str | None = None,
    gpu_bandwidth_gbs: float | None = None,
) -> dict:
    """Source, diff against the parent, verdict, metrics and roofline position, advice, spend.

    ``row`` is the candidate's :func:`~kernelloop.runs.report.candidates_with_calls` row,
    ``verdict`` its ``Verdict.to_dict()`` (None until evaluated), ``siblings`` the problem's
    rows, ``advice`` the problem's advice rows and ``calls`` the problem's LLM call rows;
    ``build_log`` the stored ``build.log``, ``gpu_bandwidth_gbs`` the datasheet DRAM bandwidth
    of the timing's GPU.
    """
    cid = row["candidate_id"]
    about = _advice_about(row, siblings, advice)
    followed = [a for a in advice if row["round"] > 0 and a["round"] == row["round"] - 1]
    by_id = {c["call_id"]: c for c in calls}
    key = coder_call_key(row["problem_id"], row["round"], row["idx"])
    behind = [{**c, "purpose": "wrote this candidate"} for c in calls if c["idem_key"] == key]
    for a in about:
        if a["llm_call_id"] in by_id:
            behind.append({**by_id[a["llm_call_id"]], "purpose": f"Judge's {a['mode']} advice"})
    diff = None
    if parent_source is not None and source is not None:
        diff = unified_diff(parent_source, source, row["parent_id"], cid)
    reasons = (verdict or {}).get("reasons") or []
    codes = list(dict.fromkeys(r["code"] for r in reasons))
    return {
        "run": _run_header(summary, run_devices(siblings)),
        "candidate": {
            **row,
            "result": result_label(row["accepted"]),
            "speedup_eager": interval(row, "speedup_eager"),
            "speedup_compile": interval(row, "speedup_compile"),
            "is_best": any(
                p["best"] and p["best"]["candidate_id"] == cid for p in summary["problems"]
            ),
        },
        "verdict": verdict,
        "reasons_by_code": [
            {"code": code, "messages": [r["message"] for r in reasons if r["code"] == code]}
            for code in codes
        ],
        "timing": timing_model((verdict or {}).get("timing"), gpu_bandwidth_gbs),
        "source": source,
        "diff": diff,
        "build_log": build_log if build_log is not None else _verdict_log(verdict),
        "advice_about": about,
        "advice_followed": followed,
        "calls": behind,
        "call_totals": {
            "prompt_tokens": sum(c["prompt_tokens"] or 0 for c in behind),
            "completion_tokens": sum(c["completion_tokens"] or 0 for c in behind),
            "usd": sum(c["cost_usd"] or 0.0 for c in behind),
            "usd_unknown_calls": sum(c["cost_usd"] is None for c in behind),
        },
    }


def _verdict_log(verdict: dict | None) -> str | None:
    build = (verdict or {}).get("build")
    return build.get("log") if build else None


# --- library -------------------------------------------------------------------------------------
def library_page(entries: list[Any], user_dir: str, runs: set[str]) -> dict:
    """Entries (:class:`kernelloop.library.manifest.Manifest`) with provenance and verification.

    ``runs`` are the run ids in the dashboard's run folder, so provenance can link to them.
    """
    out = []
    for m in entries:
        prov, ver = m.provenance, m.verification
        out.append(
            {
                "entry_id": m.entry_id,
                "op": m.op,
                "backend": m.backend,
                "arch": m.arch,
                "dtype": m.dtype,
                "bucket": m.bucket,
                "location": m.location,
                "describe": m.describe(),
                "median_ms": m.timing.median_ms,
                "speedup_eager": _triple(m.speedup_eager),
                "speedup_compile": _triple(m.speedup_compile),
                "device": m.device,
                "env": m.env,
                "created_at": m.created_at,
                "provenance": {
                    "problem_id": prov.problem_id,
                    "run_id": prov.run_id,
                    "candidate_id": prov.candidate_id,
                    "size": prov.size,
                    "run_known": prov.run_id in runs,
                },
                "verification": {
                    "verified_at": ver.verified_at,
                    "accepted": ver.accepted,
                    "codes": list(ver.codes),
                    "device": ver.device,
                    "stale": ver.stale,
                    "stale_reason": ver.stale_reason,
                },
            }
        )
    return {"entries": out, "user_dir": user_dir, "refresh": False}


def _triple(triple: tuple[float, float, float] | None) -> dict | None:
    return None if triple is None else dict(zip(("point", "low", "high"), triple, strict=True))


__all__ = [
    "FAST_P_DEFINITION",
    "campaign_page",
    "campaigns_page",
    "candidate_page",
    "candidate_tree",
    "fast_p_curve",
    "library_page",
    "problem_page",
]
