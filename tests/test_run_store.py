"""The run store keeps everything a campaign writes, survives resume, and scores runs honestly."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import shutil
import sqlite3
import threading
import time

import pytest
from paths import REPO
from typer.testing import CliRunner

from kernelloop.runs import RunNotFound, RunStore, RunStoreError, list_runs
from kernelloop.runs.cli import runs_app
from kernelloop.runs.rows import AdviceRow, CandidateRow, EventRow, LlmCallRow, ProblemRow
from kernelloop.sandbox.stats import bootstrap_ratio, summarize
from kernelloop.sandbox.verdict import (
    BuildResult,
    CorrectnessResult,
    Reason,
    TimingResult,
    TrialResult,
    Verdict,
)  # fmt: skip

CONFIG = {
    "problems": ["level1/01_relu", "level1/02_gemm"],
    "coder": "gpt-test",
    "judge": "judge-test",
    "options": {"rounds": 3, "candidates": 2, "budget_usd": 1.0},
}


def timing(cand: list[float], eager: list[float], compiled: list[float] | None = None):
    return TimingResult(
        gpu="NVIDIA H100 80GB HBM3",
        candidate=summarize(cand),
        eager=summarize(eager),
        compiled=summarize(compiled) if compiled else None,
        speedup_eager=bootstrap_ratio(eager, cand, n_boot=400),
        speedup_compile=bootstrap_ratio(compiled, cand, n_boot=400) if compiled else None,
        order=["candidate", "eager", "compiled"],
    )


def verdict(problem_id: str, *, codes: tuple[str, ...] = (), t: TimingResult | None = None):
    accepted = not codes
    return Verdict(
        accepted=accepted,
        reasons=[Reason(c, f"{c.lower()} in trial main/s1") for c in codes],
        problem_id=problem_id,
        size="gpu" if t else "cpu",
        backend="triton",
        device="NVIDIA H100 80GB HBM3" if t else "cpu (Triton interpreter)",
        sandbox="process",
        build=BuildResult(ok=True, seconds=0.4, log="ptxas info: Used 32 registers"),
        correctness=CorrectnessResult(passed=accepted, trials=[TrialResult("main/s1", accepted)]),
        timing=t,
        timing_note=None if t else "no GPU: correctness only",
        phases={"static": 0.01, "candidate": 1.2},
    )


def flat(candidate_ms: float, eager_ms: float, compile_ms: float | None = None) -> TimingResult:
    """A timing whose speedup interval is exact: constant samples."""
    comp = [compile_ms] * 5 if compile_ms else None
    return timing([candidate_ms] * 5, [eager_ms] * 5, comp)


def llm_result(text: str, cost: float | None, prompt: int = 100, completion: int = 50) -> dict:
    return {"text": text, "model": "gpt-test-2026-01-01", "prompt_tokens": prompt,
            "completion_tokens": completion, "cost_usd": cost, "latency_s": 1.5,
            "attempts": 1, "finish_reason": "stop"}  # fmt: skip


@pytest.fixture
def store(tmp_path):
    with RunStore.create(tmp_path / "runs", CONFIG, run_id="run-a") as s:
        yield s


# --- creating and opening -----------------------------------------------------------------------
def test_create_open_round_trip(tmp_path):
    s = RunStore.create(tmp_path / "runs", CONFIG)
    assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{4}", s.run_id) and s.path.name == s.run_id
    s.start_problem("level1/01_relu")
    cid = s.add_candidate("level1/01_relu", 0, 0, "print('k')\n", parent_id=None, mode="initial")
    s.set_status("finished")
    s.close()

    again = RunStore.open(tmp_path / "runs" / s.run_id)
    assert again.run_id == s.run_id and again.config() == CONFIG
    meta = again.meta()
    assert meta["schema_version"] == str(RunStore.SCHEMA_VERSION) and meta["status"] == "finished"
    assert meta["finished_at"] >= meta["created_at"]
    row = again.candidate(cid)
    assert cid == "level1-01-relu-r0-c0" and row.accepted is None
    assert (again.path / row.source_path).read_text() == "print('k')\n"
    assert row.source_path == f"candidates/{cid}/source.py"  # relative to the run folder
    again.close()
    db = sqlite3.connect(again.path / "run.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # readers never block writers
    db.close()


def test_create_refuses_an_existing_run_folder(tmp_path):
    RunStore.create(tmp_path, CONFIG, run_id="same").close()
    with pytest.raises(RunStoreError, match="already exists"):
        RunStore.create(tmp_path, CONFIG, run_id="same")
    with pytest.raises(ValueError, match="plain folder name"):
        RunStore.create(tmp_path, CONFIG, run_id="../escape")


def test_open_refuses_missing_runs_and_newer_schemas(tmp_path):
    with pytest.raises(RunNotFound, match="runs list"):
        RunStore.open(tmp_path / "nope")
    RunStore.create(tmp_path, CONFIG, run_id="future").close()
    db = sqlite3.connect(tmp_path / "future" / "run.sqlite")
    with db:
        newer = str(RunStore.SCHEMA_VERSION + 1)
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (newer,))
    db.close()
    with pytest.raises(RunStoreError, match="newer kernelloop"):
        RunStore.open(tmp_path / "future")


# --- candidates and verdicts --------------------------------------------------------------------
def test_add_candidate_is_idempotent(store):
    args = ("level1/01_relu", 1, 0, "src = 1\n")
    first = store.add_candidate(*args, parent_id=None, mode="initial")
    assert store.add_candidate(*args, parent_id=None, mode="initial") == first
    assert len(store.candidates()) == 1
    with pytest.raises(ValueError, match="different source"):
        store.add_candidate("level1/01_relu", 1, 0, "src = 2\n", parent_id=None, mode="initial")
    with pytest.raises(ValueError, match="mode"):
        store.add_candidate("level1/01_relu", 1, 1, "x", parent_id=None, mode="guess")


def test_verdict_recorded_and_read_back(store):
    pid = "level1/01_relu"
    cid = store.add_candidate(pid, 0, 0, "k = 1\n", parent_id=None, mode="initial")
    assert store.verdict_for(cid) is None
    v = verdict(pid, t=timing([1.0, 1.02, 0.98, 1.01], [2.0, 2.1, 1.9, 2.05], [1.5, 1.6, 1.4]))
    store.record_verdict(cid, v)

    assert store.verdict_for(cid) == v
    row = store.candidate(cid)
    assert row.accepted is True and row.codes == []
    assert row.median_ms == v.timing.candidate.median
    iv = v.timing.speedup_eager
    assert (row.speedup_eager, row.speedup_eager_low, row.speedup_eager_high) == (
        iv.point, iv.low, iv.high)  # fmt: skip
    assert row.speedup("speedup_eager") == {"point": iv.point, "low": iv.low, "high": iv.high}
    assert row.speedup_compile_low == v.timing.speedup_compile.low
    folder = store.path / "candidates" / cid
    assert Verdict.from_json((folder / "verdict.json").read_text()) == v
    assert (folder / "build.log").read_text() == "ptxas info: Used 32 registers"
    assert row.verdict_path == f"candidates/{cid}/verdict.json"

    bad = store.add_candidate(pid, 0, 1, "k = 2\n", parent_id=None, mode="initial")
    store.record_verdict(bad, verdict(pid, codes=("WRONG_OUTPUT", "TORCH_COMPUTE")))
    rejected = store.candidate(bad)
    assert rejected.accepted is False and rejected.codes == ["WRONG_OUTPUT", "TORCH_COMPUTE"]
    assert rejected.median_ms is None and rejected.speedup("speedup_eager") is None
    with pytest.raises(ValueError, match="belongs to"):
        store.record_verdict(bad, verdict("level1/other"))


def test_best_candidate_ordering(store):
    pid = "p/timed"

    def add(idx, v, parent=None):
        cid = store.add_candidate(pid, 1, idx, f"k = {idx}\n", parent_id=parent, mode="optimize")
        store.record_verdict(cid, v)
        return cid

    assert store.best_candidate(pid) is None
    add(0, verdict(pid))  # accepted, untimed: ranks below any timed one
    add(1, verdict(pid, t=flat(1.0, 1.5)))  # 1.5x
    add(2, verdict(pid, t=flat(1.0, 2.0)))  # 2.0x at 1.0 ms
    fastest = add(3, verdict(pid, t=flat(0.5, 1.0)))  # 2.0x too, at 0.5 ms: the tie goes here
    add(4, verdict(pid, codes=("WALL_CLOCK_MISMATCH",), t=flat(0.1, 1.0)))  # rejected 10x
    assert store.best_candidate(pid).candidate_id == fastest
    store.start_problem(pid)
    store.finish_problem(pid, "solved", "rounds: 3 done")
    assert store.problems()[0].best_candidate_id == fastest

    cpu = "p/cpu"
    first = store.add_candidate(cpu, 0, 0, "a\n", parent_id=None, mode="initial")
    second = store.add_candidate(cpu, 0, 1, "b\n", parent_id=None, mode="initial")
    store.record_verdict(second, verdict(cpu))
    store.record_verdict(first, verdict(cpu))
    assert store.best_candidate(cpu).candidate_id == first  # earliest created, not evaluated


# --- LLM calls ----------------------------------------------------------------------------------
def test_llm_calls_unknown_cost_and_resume(store):
    messages = [{"role": "user", "content": "write a kernel"}]
    kw = {"problem_id": "level1/01_relu", "round": 0, "model": "gpt-test", "messages": messages}
    paid = store.record_llm_call("k1", role="coder", result=llm_result("```python\nA\n```", 0.25),
                                 **kw)  # fmt: skip
    store.record_llm_call("k2", role="judge", result=llm_result("{}", None, 10, 5), **kw)

    found = store.find_llm_call("k1")
    assert found.call.call_id == paid and found.ok and found.call.status == "ok"
    assert found.text == "```python\nA\n```" and found.result["cost_usd"] == 0.25
    assert store.find_llm_call("missing") is None
    request = json.loads((store.path / found.call.request_path).read_text())
    assert request["messages"] == messages and found.call.request_path.startswith("llm/")

    # Recording a completed key again neither duplicates nor pays twice.
    assert store.record_llm_call("k1", role="coder", result=llm_result("B", 9.0), **kw) == paid
    assert store.find_llm_call("k2").call.cost_usd is None  # unknown stays unknown, not 0
    assert store.spend() == {"usd": 0.25, "usd_unknown_calls": 1, "prompt_tokens": 110,
                             "completion_tokens": 55, "calls": 2}  # fmt: skip
    assert store.spend("elsewhere")["calls"] == 0

    # A failed attempt is kept (it counts as unknown spend) and a retry takes over its key.
    failed = store.record_llm_call("k3", role="coder", result=None, error="HTTP 503", **kw)
    attempt = store.find_llm_call("k3")
    assert not attempt.ok and attempt.call.error == "HTTP 503"
    assert attempt.text is None and attempt.result is None
    retry = store.record_llm_call("k3", role="coder", result=llm_result("C", 0.5), **kw)
    assert retry != failed and store.find_llm_call("k3").text == "C"
    assert [c.status for c in store.llm_calls()] == ["ok", "ok", "error", "ok"]
    assert store.spend()["usd_unknown_calls"] == 2 and store.spend()["usd"] == 0.75


def test_advice_replaces_and_events_follow(store):
    pid = "level1/01_relu"
    for rnd, mode, advice in [(0, "repair", {"fix": "mask the tail"}),
                              (0, "repair", {"fix": "use tl.where"}),
                              (1, "optimize", {"next": "vectorise"})]:  # fmt: skip
        store.add_advice(pid, rnd, mode, advice, candidate_id=None, llm_call_id=None)
    advice = [a.advice for a in store.advice(pid)]
    assert advice == [{"fix": "use tl.where"}, {"next": "vectorise"}]  # the latest per round wins
    store.event("problem_started", pid, summary="relu")
    store.event("run_note", detail="x")
    first = store.events()
    assert [e.kind for e in first] == ["problem_started", "run_note"]
    assert first[0].payload == {"summary": "relu"} and first[1].problem_id is None
    store.event("evaluated", pid, accepted=True)
    assert [e.kind for e in store.events(after_id=first[-1].id)] == ["evaluated"]


def test_concurrent_writes_from_threads(store):
    pid = "level1/01_relu"
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(15):
                cid = store.add_candidate(pid, worker, i, f"w{worker}i{i}\n", parent_id=None,
                                          mode="initial")  # fmt: skip
                store.add_candidate(pid, 0, 0, "shared\n", parent_id=None, mode="initial")
                store.record_verdict(cid, verdict(pid))
                store.record_llm_call(f"{worker}-{i}", problem_id=pid, round=worker,
                                      role="coder", model="m", messages=[],
                                      result=llm_result("t", 0.01))  # fmt: skip
                store.event("evaluated", pid, candidate=cid)
        except BaseException as exc:  # surfaced by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(1, 9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(store.candidates(pid)) == 8 * 15 + 1
    assert sum(c.accepted is True for c in store.candidates(pid)) == 8 * 15
    assert store.spend()["calls"] == 8 * 15 and math.isclose(store.spend()["usd"], 1.2)
    assert len(store.events()) == 8 * 15
    assert len({c.call_id for c in store.llm_calls()}) == 8 * 15


# --- scoring ------------------------------------------------------------------------------------
def small_run(runs_dir, run_id: str = "scored") -> RunStore:
    """Four problems: fast with confidence, fast inside noise, nothing correct, CPU only."""
    s = RunStore.create(runs_dir, CONFIG, run_id=run_id)
    tight = timing([1.0, 1.01, 0.99, 1.0, 1.02], [2.0, 2.02, 1.98, 2.01, 1.99], [1.5, 1.5, 1.52])
    noisy = timing([1.0] * 5, [0.8, 0.9, 1.1, 1.2, 1.3])
    assert tight.speedup_eager.low > 1.0 and noisy.speedup_eager.point > 1.0
    assert noisy.speedup_eager.low < 1.0
    plan = {"p/fast": [tight], "p/noisy": [noisy], "p/broken": [None], "p/cpu": ["cpu"]}
    for pid, outcomes in plan.items():
        s.start_problem(pid)
        for i, outcome in enumerate(outcomes):
            cid = s.add_candidate(pid, 0, i, f"{pid}{i}\n", parent_id=None, mode="initial")
            if outcome is None:
                s.record_verdict(cid, verdict(pid, codes=("BUILD_FAILED",)))
            else:
                s.record_verdict(cid, verdict(pid, t=None if outcome == "cpu" else outcome))
        s.record_llm_call(f"{pid}-c", problem_id=pid, round=0, role="coder", model="gpt-test",
                          messages=[], result=llm_result("x", 0.1))  # fmt: skip
        s.finish_problem(pid, "unsolved" if pid == "p/broken" else "solved", "rounds: 1 done")
    s.set_status("finished")
    return s


def test_summary_scores_a_small_run(tmp_path):
    s = small_run(tmp_path)
    summary = s.summary()
    assert summary["n_problems"] == 4 and summary["candidates"] == 4 and summary["accepted"] == 3
    assert summary["correct_pct"] == 75.0
    assert summary["fast_1"] == 0.25  # only p/fast is faster with confidence
    fast = summary["problems"][0]["best"]["speedup_eager"]["point"]
    noisy = summary["problems"][1]["best"]["speedup_eager"]["point"]
    assert math.isclose(summary["geomean_speedup_eager"], math.sqrt(fast * noisy))
    assert summary["timed_problems"] == 2 and summary["compile_timed_problems"] == 1
    assert math.isclose(summary["geomean_speedup_compile"], 1.5)
    assert summary["models"] == ["gpt-test", "judge-test"]
    assert math.isclose(summary["spend"]["usd"], 0.4) and summary["minutes"] >= 0
    by_id = {p["problem_id"]: p for p in summary["problems"]}
    assert by_id["p/broken"]["best"] is None and by_id["p/broken"]["status"] == "unsolved"
    assert by_id["p/cpu"]["best"]["speedup_eager"] is None and by_id["p/cpu"]["rounds"] == 1
    assert math.isclose(by_id["p/fast"]["spend"]["usd"], 0.1)
    json.dumps(summary)  # the dashboard and --json need it serialisable
    s.close()


def test_summary_of_a_cpu_only_run_claims_no_speedup(store):
    store.add_candidate("p", 0, 0, "x\n", parent_id=None, mode="initial")
    store.record_verdict("p-r0-c0", verdict("p"))
    s = store.summary()
    assert s["correct_pct"] == 100.0 and s["fast_1"] is None  # not measured, not "0% fast"
    assert s["geomean_speedup_eager"] is None and s["timed_problems"] == 0


def test_list_runs_newest_first_and_skips_other_folders(tmp_path):
    for run_id in ("zz-oldest", "mm-middle", "aa-newest"):  # creation order, not name order
        RunStore.create(tmp_path, CONFIG, run_id=run_id).close()
        time.sleep(0.01)
    (tmp_path / "notes").mkdir()
    (tmp_path / "stray.txt").write_text("x")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "run.sqlite").write_text("not a database")
    runs = list_runs(tmp_path)
    assert [r["run_id"] for r in runs] == ["aa-newest", "mm-middle", "zz-oldest", "broken"]
    assert runs[-1]["status"] == "unreadable" and runs[-1]["error"]
    assert runs[0]["models"] == ["gpt-test", "judge-test"] and runs[0]["usd"] == 0.0
    assert list_runs(tmp_path / "missing") == []


# --- CLI ----------------------------------------------------------------------------------------
runner = CliRunner()
WIDE = {"COLUMNS": "250"}


def test_cli_list_and_show(tmp_path):
    small_run(tmp_path, "run-one").close()
    with RunStore.create(tmp_path, CONFIG, run_id="run-two") as s:
        s.record_llm_call("k", problem_id="p/x", round=0, role="judge", model="judge-test",
                          messages=[], result=llm_result("{}", None))  # fmt: skip

    listed = runner.invoke(runs_app, ["list", "--run-dir", str(tmp_path)], env=WIDE)
    assert listed.exit_code == 0, listed.output
    assert "run-one" in listed.stdout and "run-two" in listed.stdout
    assert "75%" in listed.stdout and "1 unknown" in listed.stdout

    shown = runner.invoke(runs_app, ["show", "run-one", "--run-dir", str(tmp_path)], env=WIDE)
    assert shown.exit_code == 0, shown.output
    for text in ("p/fast", "p-fast-r0-c0", "BUILD_FAILED", "accepted", "rejected", "fast_1 25%",
                 "p-broken-r0-coder-1", "$0.1000"):  # fmt: skip
        assert text in shown.stdout, text
    by_path = runner.invoke(runs_app, ["show", str(tmp_path / "run-two")], env=WIDE)
    assert by_path.exit_code == 0 and "unknown" in by_path.stdout  # cost of the unpriced call


def test_cli_json_prints_exactly_one_document(tmp_path):
    small_run(tmp_path, "run-one").close()
    listed = runner.invoke(runs_app, ["list", "--run-dir", str(tmp_path), "--json"])
    assert listed.exit_code == 0
    assert [r["run_id"] for r in json.loads(listed.stdout)] == ["run-one"]
    shown = runner.invoke(runs_app, ["show", "run-one", "--run-dir", str(tmp_path), "--json"])
    assert shown.exit_code == 0
    doc = json.loads(shown.stdout)  # the whole of stdout is one JSON document
    assert doc["summary"]["correct_pct"] == 75.0 and len(doc["candidates"]) == 4
    assert {c["role"] for c in doc["llm_calls"]} == {"coder"}


def test_cli_unknown_run_exits_2_and_lists_runs(tmp_path):
    small_run(tmp_path, "run-one").close()
    result = runner.invoke(runs_app, ["show", "nope", "--run-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "nope" in result.stderr and "run-one" in result.stderr
    empty = runner.invoke(runs_app, ["show", "nope", "--run-dir", str(tmp_path / "none")])
    assert empty.exit_code == 2 and "none" in empty.stderr


def test_minutes_count_the_sittings_not_the_calendar_between_them(tmp_path, monkeypatch):
    from kernelloop.runs import store as store_mod

    clock = iter(
        [
            "2026-11-26T10:00:00.000+00:00",  # sitting 1 starts
            "2026-11-26T10:00:10.000+00:00",  # problem started; the budget stops it at once
            "2026-11-26T10:00:10.000+00:00",
            "2026-11-26T10:01:00.000+00:00",  # sitting 1 ends: 60 s
            "2026-11-28T09:00:00.000+00:00",  # two days later, sitting 2 starts
            "2026-11-28T09:00:05.000+00:00",  # the problem's first round starts now
            "2026-11-28T09:00:35.000+00:00",  # and ends
            "2026-11-28T09:00:40.000+00:00",  # sitting 2 ends: 40 s
        ]
    )
    s = RunStore.create(tmp_path, {"problems": ["p"]}, run_id="sittings")
    monkeypatch.setattr(store_mod, "timestamp", lambda: next(clock))
    s.set_status("running")
    s.start_problem("p")
    s.finish_problem("p", "interrupted", "budget: 1.0 of 1.0 minutes")
    s.set_status("finished")
    s.set_status("running")
    s.start_problem("p")
    s.finish_problem("p", "unsolved", "rounds: 1 done")
    s.set_status("finished")
    summary = s.summary()
    assert summary["minutes"] == pytest.approx(100 / 60)
    (p,) = summary["problems"]
    assert p["minutes"] == pytest.approx(0.5)  # its clock restarted in the sitting that ran it


def test_a_run_from_before_sittings_keeps_its_first_sitting_when_resumed(tmp_path, monkeypatch):
    from kernelloop.runs import sql
    from kernelloop.runs import store as store_mod

    s = RunStore.create(tmp_path, {"problems": ["p"]}, run_id="old")
    start, end = "2026-11-26T10:00:00.000+00:00", "2026-11-26T10:02:00.000+00:00"
    with s._tx() as db:  # as an older kernelloop left it: created, finished, nothing else
        db.execute(sql.SET_META, ("created_at", start, start))
        db.execute(sql.SET_META, ("finished_at", end, end))
    clock = iter(["2026-11-27T08:00:00.000+00:00", "2026-11-27T08:00:30.000+00:00"])
    monkeypatch.setattr(store_mod, "timestamp", lambda: next(clock))
    s.set_status("running")
    s.set_status("finished")
    assert s.summary()["minutes"] == pytest.approx(2.5)  # 2 min then, 30 s now; not a day


# --- typed rows, the builtin coder's configs, runs written before schema 2 ----------------------
ROW_TYPES = {"problems": ProblemRow, "candidates": CandidateRow, "llm_calls": LlmCallRow,
             "advice": AdviceRow, "events": EventRow}  # fmt: skip
COMMITTED_RUN = REPO / "benchmarks/results/runs/h100-level1-builtin"
RELU_RECORD = {"configs": [{"BLOCK": 1024}], "plan": "relu", "templates": ["elementwise"]}


def test_rows_are_frozen_one_field_per_column_and_json_as_before(tmp_path):
    s = small_run(tmp_path)
    s.add_advice("p/fast", 0, "optimize", {"next": "x"}, candidate_id=None, llm_call_id=None)
    s.event("run_note", detail="x")
    db = sqlite3.connect(s.path / "run.sqlite")
    for table, cls in ROW_TYPES.items():
        columns = [c[1] for c in db.execute(f"PRAGMA table_info({table})")]
        assert [f.name for f in dataclasses.fields(cls)] == columns, table
    db.close()
    row = s.best_candidate("p/fast")
    assert isinstance(row, CandidateRow) and isinstance(s.problems()[0], ProblemRow)
    assert isinstance(s.llm_calls()[0], LlmCallRow) and isinstance(s.advice("p/fast")[0], AdviceRow)
    assert isinstance(s.events()[0], EventRow) and s.events()[0].payload == {"detail": "x"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.accepted = False  # type: ignore[misc]
    # The public JSON keeps the shape rows had as dicts: columns in table order, parsed values.
    doc = row.to_dict()
    assert list(doc) == [f.name for f in dataclasses.fields(CandidateRow)][:-1]
    assert doc["accepted"] is True and doc["codes"] == [] and "builtin_config" not in doc
    s.close()


def test_the_builtin_coders_configs_are_stored_with_the_candidate(store):
    ours = store.add_candidate("p", 0, 0, "a\n", parent_id=None, mode="initial",
                               builtin_config=RELU_RECORD)  # fmt: skip
    theirs = store.add_candidate("p", 0, 1, "b\n", parent_id=None, mode="initial")
    assert store.candidate(ours).builtin_config == RELU_RECORD
    assert store.candidate(theirs).builtin_config is None  # an LLM's kernel has none
    shown = runner.invoke(runs_app, ["show", str(store.path), "--json"])
    assert shown.exit_code == 0 and "builtin_config" not in shown.stdout  # the JSON is unchanged


def test_a_committed_run_from_schema_1_still_opens_and_only_a_writer_upgrades_it(tmp_path):
    run = shutil.copytree(COMMITTED_RUN, tmp_path / COMMITTED_RUN.name)  # never open the original
    with RunStore.open(run) as old:
        (relu,) = old.candidates()
        assert isinstance(relu, CandidateRow) and relu.accepted is True and relu.codes == []
        assert relu.builtin_config is None and relu.speedup("speedup_eager")["low"] < 1.0
        assert old.summary()["schema_version"] == 1  # reading added no column and no version
        # A resumed sitting adds the column first; the old row keeps NULL in it.
        cid = old.add_candidate("level1/01_relu", 1, 0, "k\n", parent_id=relu.candidate_id,
                                mode="optimize", builtin_config=RELU_RECORD)  # fmt: skip
        assert old.meta()["schema_version"] == str(RunStore.SCHEMA_VERSION)
        assert old.candidate(cid).builtin_config == RELU_RECORD
        assert old.candidate(relu.candidate_id).builtin_config is None
