"""Dashboard page models on inputs a CPU run cannot produce: GPU timings, hostile strings, trees.

(The pages over a real run store: tests/test_dashboard.py.)"""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi", reason="the dashboard extra is not installed")

from kernelloop.dashboard import charts, views  # noqa: E402
from kernelloop.dashboard.render import render  # noqa: E402


def test_fast_p_counts_point_speedups_above_p_over_all_problems():
    def best(point):
        return {"speedup_eager": {"point": point, "low": point * 0.9, "high": point * 1.1}}

    curve = views.fast_p_curve([best(0.8), best(1.5), best(2.5), None, {"speedup_eager": None}])
    at = {c["p"]: c["share"] for c in curve}
    assert curve[0]["p"] == 0.0 and curve[-1]["p"] == 3.0 and len(curve) == 61
    assert at[0.0] == pytest.approx(3 / 5)  # untimed and unsolved problems never count
    assert at[1.0] == pytest.approx(2 / 5) and at[1.5] == pytest.approx(1 / 5)  # strictly above
    assert at[3.0] == 0.0
    assert views.fast_p_curve([])[0]["share"] == 0.0


def test_candidate_tree_nests_children_under_parents():
    rows = [
        {"candidate_id": "a", "parent_id": None},
        {"candidate_id": "b", "parent_id": "a"},
        {"candidate_id": "c", "parent_id": "a"},
        {"candidate_id": "d", "parent_id": "c"},
        {"candidate_id": "e", "parent_id": "gone"},  # parent not in the run: a root
    ]
    tree = views.candidate_tree(rows)
    assert [n["candidate"]["candidate_id"] for n in tree] == ["a", "e"]
    assert [n["candidate"]["candidate_id"] for n in tree[0]["children"]] == ["b", "c"]
    assert tree[0]["children"][1]["children"][0]["candidate"]["candidate_id"] == "d"


def _timed_verdict(problem_id: str, message: str = "") -> dict:
    from kernelloop.sandbox.stats import bootstrap_ratio, summarize
    from kernelloop.sandbox.verdict import BuildResult, Reason, TimingResult, Verdict

    cand, eager = [0.50, 0.51, 0.52, 0.50, 0.51], [1.00, 1.02, 1.01, 1.00, 1.03]
    timing = TimingResult(
        gpu="NVIDIA H100 80GB HBM3", candidate=summarize(cand), eager=summarize(eager),
        compiled=None, speedup_eager=bootstrap_ratio(eager, cand, n_boot=200),
        speedup_compile=None, order=["eager", "candidate"], roofline_floor_ms=0.25,
        wall_ms_per_call=0.52, achieved_gbps=1675.0, achieved_tflops=0.0, fraction_of_peak=0.49,
        notes=["clocks steady"],
    )  # fmt: skip
    reasons = [Reason("WALL_CLOCK_MISMATCH", message)] if message else []
    return Verdict(
        accepted=not reasons, reasons=reasons, problem_id=problem_id, size="gpu",
        backend="triton", device="NVIDIA H100 80GB HBM3", sandbox="process",
        build=BuildResult(ok=True, seconds=0.4, log="ptxas <info>"), timing=timing,
        phase_detail={"candidate.forward": 0.9, "compare.read": 2.5, "reference.write": 0.1},
    ).to_dict()  # fmt: skip


def _summary(problem_id: str) -> dict:
    spend = {"usd": 0.0, "usd_unknown_calls": 0, "prompt_tokens": 0, "completion_tokens": 0,
             "calls": 0}  # fmt: skip
    return {
        "run_id": "r", "status": "finished", "created_at": "2026-01-01T00:00:00+00:00",
        "finished_at": None, "minutes": 1.0, "config": {}, "models": [],
        "kernelloop_version": "0", "spend": spend,
        "problems": [{"problem_id": problem_id, "best": None}],
    }  # fmt: skip


def _row(problem_id: str, cid: str, speedup: float | None = 2.0) -> dict:
    return {
        "candidate_id": cid, "problem_id": problem_id, "round": 1, "idx": 0, "parent_id": "p",
        "mode": "optimize", "accepted": True, "codes": [], "backend": "triton",
        "device": "NVIDIA H100 80GB HBM3", "median_ms": 0.51, "speedup_eager": speedup,
        "speedup_eager_low": 1.9, "speedup_eager_high": 2.1, "speedup_compile": None,
        "speedup_compile_low": None, "speedup_compile_high": None,
        "created_at": "2026-01-01T00:00:00+00:00",
    }  # fmt: skip


def test_timed_candidate_page_shows_the_roofline_position_and_a_timing_chart():
    page = views.candidate_page(
        _summary("p1"), _row("p1", "c1"), _timed_verdict("p1"), "x = 1\n", "x = 0\n",
        siblings=[], advice=[], calls=[], gpu_bandwidth_gbs=3350.0,
    )  # fmt: skip
    t = page["timing"]
    assert t["bandwidth_share"] == pytest.approx(1675 / 3350)
    assert t["floor_ratio"] == pytest.approx(0.51 / 0.25)
    fig = charts.timing(t)
    assert list(fig.data[0].y) == ["roofline floor", "this kernel", "eager PyTorch"]
    html = render("candidate.html", page=page, charts=charts.candidate_charts(page), refresh=False)
    assert 'id="chart-timing"' in html
    assert "50% of the 3350 GB/s datasheet peak" in html and "49.0% of the attainable" in html
    assert "2.04x the floor" in html and "clocks steady" in html
    assert "slowest steps" in html and html.index("compare.read") < html.index("candidate.forward")


def test_stored_text_is_escaped_everywhere():
    hostile = "</script><script>alert(1)</script><img src=x onerror=alert(2)>"
    verdict = _timed_verdict("p1", message=hostile)
    advice = [{"id": 1, "problem_id": "p1", "round": 1, "candidate_id": "c1", "mode": "optimize",
               "advice": {"change": hostile, "evidence": [hostile]}, "llm_call_id": None,
               "created_at": "2026-01-01T00:00:00+00:00"}]  # fmt: skip
    page = views.candidate_page(
        _summary("p1"), _row("p1", "c1"), verdict, f"# {hostile}\nx = '{hostile}'\n",
        "x = 0\n", siblings=[], advice=advice, calls=[], build_log=hostile,
    )  # fmt: skip
    html = render("candidate.html", page=page, charts=charts.candidate_charts(page), refresh=False)
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(2)&gt;" in html
    fig = charts.spend([{"problem_id": hostile, "spend": _summary("p")["spend"]}])
    assert "<script>alert" not in charts.embed(fig, "x")


def test_a_candidate_not_yet_evaluated_renders_as_pending_and_refreshes():
    summary = {**_summary("p1"), "status": "running"}
    row = {**_row("p1", "c1", speedup=None), "accepted": None, "median_ms": None}
    page = views.candidate_page(summary, row, None, "x = 1\n", None, [row], [], [])
    assert page["candidate"]["result"] == "pending" and page["run"]["refresh"]
    html = render("candidate.html", page=page, charts=charts.candidate_charts(page), refresh=True)
    assert "Not evaluated yet: this page refreshes until the verdict arrives" in html
    assert '<meta http-equiv="refresh"' in html
