"""The agent loop end to end on CPU: the real openai client, a scripted server on 127.0.0.1,
the real evaluator, the run store, and resume after SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest
from fake_openai import FakeOpenAI
from paths import REPO, TESTS

from kernelloop.agents import campaign, graph
from kernelloop.agents.state import CampaignOptions
from kernelloop.kernelbench import loader
from kernelloop.runs.store import RunStore

RIGHT = (REPO / "kernelbench/problems/level1/solutions/01_relu.py").read_text()
# Runs, launches a kernel, and is wrong: it adds 1 to every output.
WRONG = RIGHT.replace("tl.maximum(x, 0.0)", "tl.maximum(x, 0.0) + 1.0")
ADVICE = {
    "error_type": "wrong values",
    "root_cause": "every output is off by one",
    "fix": "remove the + 1.0 from the store",
    "bottleneck": "memory bandwidth",
    "evidence": [{"metric": "achieved bandwidth", "value": 0, "unit": "GB/s"}],
    "change": "use a larger BLOCK",
    "expected_effect": "fewer programs",
}
assert WRONG != RIGHT, "the solution's store changed: update WRONG"


class Script:
    """Replies by role: the first Coder reply is wrong, later ones right; the Judge advises."""

    def __init__(self, pause_on_request: int | None = None):
        self.coder_calls = 0
        self.answered: list[str] = []  # request bodies that got a 200 reply
        self.pause_on = pause_on_request
        self.paused = threading.Event()
        self.lock = threading.Lock()

    def __call__(self, request: dict) -> str:
        body = json.dumps(request["messages"], sort_keys=True)
        with self.lock:
            n = len(self.answered) + 1
        if self.pause_on is not None and n == self.pause_on:
            self.paused.set()
            time.sleep(60)  # the campaign is killed while waiting for this reply
        system = request["messages"][0]["content"]
        if "kernel engineer" in system:
            with self.lock:
                self.coder_calls += 1
                first = self.coder_calls == 1
            reply = f"Here it is.\n```python\n{WRONG if first else RIGHT}\n```\n"
        else:
            reply = json.dumps(ADVICE)
        with self.lock:
            self.answered.append(body)
        return reply


def _problem():
    return loader.load_one("level1/01_relu")


def _run_in_process(tmp_path, responder, **option_changes):
    options = CampaignOptions(**{"rounds": 2, "candidates": 1, **option_changes})
    with FakeOpenAI(responder=responder) as server:
        store = campaign.open_store([_problem()], coder_model="c", judge_model="j",
                                    options=options, base_url=server.base_url,
                                    runs_dir=tmp_path, resume=None)  # fmt: skip
        campaign.run(store, [_problem()], coder_model="c", judge_model="j", options=options,
                     base_url=server.base_url)  # fmt: skip
        return store, list(server.requests)


def test_wrong_kernel_is_repaired_and_the_run_store_shows_both(tmp_path):
    store, requests = _run_in_process(tmp_path, Script())
    cands = store.candidates("level1/01_relu")
    assert [c.round for c in cands] == [0, 1]
    assert cands[0].accepted is False and "WRONG_OUTPUT" in cands[0].codes
    assert cands[1].accepted is True and cands[1].parent_id == cands[0].candidate_id
    assert cands[1].mode == "repair"
    advice = store.advice("level1/01_relu")
    assert advice and advice[0].mode == "repair" and advice[0].advice["fix"]
    calls = store.llm_calls()
    assert {c.role for c in calls} == {"coder", "judge"}
    assert all(c.prompt_tokens and c.completion_tokens for c in calls)
    assert all(c.cost_usd is None for c in calls)  # unknown models: unknown cost, never 0
    # The repair prompt showed the Coder the failure and the Judge's diagnosis.
    repair_prompt = requests[2]["messages"][-1]["content"]
    assert "WRONG_OUTPUT" in repair_prompt and "off by one" in repair_prompt
    # Hold-out sizes never reach the agents.
    assert all("HOLDOUT" not in m["content"] for r in requests for m in r["messages"])
    summary = store.summary()
    assert summary["problems"][0]["accepted"] == 1


def test_without_a_gpu_the_judge_reads_the_kernels_compiled_for_sm90(tmp_path):
    """A CPU evaluation runs Triton interpreted, which compiles nothing; its recorded launches
    are compiled for sm_90 in a sandbox worker, and the Judge's prompt carries the result."""
    script = Script()
    script.coder_calls = 1  # right from the first reply
    _, requests = _run_in_process(tmp_path, script)
    judge = [r for r in requests if "kernel engineer" not in r["messages"][0]["content"]]
    prompt = judge[0]["messages"][-1]["content"]
    assert "resources of _relu_kernel (ptxas-log, sm_90a):" in prompt, prompt
    assert "registers/thread" in prompt


def test_graph_diagram_snapshot(tmp_path):
    ctx = campaign.CampaignContext(
        problem=_problem(), store=None, options=CampaignOptions(), coder=None, judge=None,
        evaluate=None, gpu_brief="",
    )  # fmt: skip
    mermaid = graph.build(ctx).get_graph().draw_mermaid()
    snapshot = TESTS / "snapshots" / "campaign_graph.mmd"
    assert mermaid.strip() == snapshot.read_text().strip()


def _run_cli(args: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "kernelloop.cli", "optimize", *args],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


@pytest.mark.slow
def test_sigkill_then_resume_loses_nothing_and_repeats_no_completed_call(tmp_path):
    # Pause the 3rd request (the round-1 Coder call) and kill the campaign while it waits.
    script = Script(pause_on_request=3)
    env = {**os.environ, "KERNELLOOP_LLM_RETRIES": "0", "KERNELLOOP_LLM_TIMEOUT": "120"}
    args = ["level1/01_relu", "--coder", "coder-x", "--judge", "judge-y", "--rounds", "3",
            "--candidates", "1", "--run-dir", str(tmp_path)]  # fmt: skip
    with FakeOpenAI(responder=script) as server:
        proc = _run_cli([*args, "--base-url", server.base_url], env)
        assert script.paused.wait(timeout=120), "the campaign never reached round 1"
        before = list(script.answered)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
        script.pause_on = None
        resumed = _run_cli(["--resume", run_dir.name, "--run-dir", str(tmp_path)], env)
        out, _ = resumed.communicate(timeout=300)
        assert resumed.returncode == 0, out
        after = script.answered[len(before) :]
    # Completed (answered) calls were not asked again; the interrupted one was.
    assert not set(before) & set(after), "a completed LLM call was repeated after resume"
    store = RunStore.open(run_dir)
    cands = store.candidates("level1/01_relu")
    assert [c.round for c in cands] == [0, 1, 2], (out, store.events())
    assert [bool(c.accepted) for c in cands] == [False, True, True]
    assert store.status() == "finished"
    with sqlite3.connect(run_dir / "run.sqlite") as db:
        keys = [r[0] for r in db.execute("SELECT idem_key FROM llm_calls WHERE status = 'ok'")]
    assert len(keys) == len(set(keys))
    assert len(keys) == 5  # coder r0, judge r0, coder r1, judge r1, coder r2


def test_optimize_without_an_endpoint_says_what_to_set(monkeypatch):
    from typer.testing import CliRunner

    from kernelloop import settings
    from kernelloop.cli import app

    with settings.override(base_url=None, api_key=None):
        result = CliRunner().invoke(app, ["optimize", "level1/01_relu", "--coder", "m",
                                          "--judge", "m"])  # fmt: skip
    assert result.exit_code == 2
    assert "KERNELLOOP_BASE_URL" in result.output and "--base-url" in result.output


def test_malformed_judge_reply_is_retried_then_recorded_and_the_loop_goes_on(tmp_path):
    script = Script()

    def responder(request):
        if "kernel engineer" in request["messages"][0]["content"]:
            return script(request)
        return "I think you should make it faster, but I will not say how."

    store, requests = _run_in_process(tmp_path, responder)
    judge_requests = [r for r in requests if "kernel engineer" not in r["messages"][0]["content"]]
    assert len(judge_requests) == 2  # the reply, then one retry showing what was wrong
    assert "not valid" in judge_requests[1]["messages"][-1]["content"]
    (advice,) = store.advice("level1/01_relu")
    assert "malformed judge reply" in advice.advice["error"]
    assert len(store.candidates("level1/01_relu")) == 2  # round 1 still ran


def test_budget_stops_the_campaign(tmp_path):
    store, _ = _run_in_process(tmp_path, Script(), rounds=4, budget_tokens=1)
    assert len(store.candidates("level1/01_relu")) == 1
    (problem,) = store.problems()
    assert problem.stop_reason.startswith("budget")


def test_a_failing_endpoint_stops_the_campaign_with_a_resume_hint(tmp_path):
    from fake_openai import Reply
    from typer.testing import CliRunner

    from kernelloop import settings
    from kernelloop.cli import app

    with FakeOpenAI(responder=lambda request: Reply.error(500, "model overloaded")) as server:
        with settings.override(llm_retries=0):
            result = CliRunner().invoke(app, [
                "optimize", "level1/01_relu", "--coder", "c", "--judge", "j", "--rounds", "2",
                "--candidates", "1", "--base-url", server.base_url, "--run-dir", str(tmp_path),
            ])  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "model overloaded" in result.output and "--resume" in result.output
    (run_dir,) = list(tmp_path.iterdir())
    assert RunStore.open(run_dir).status() == "interrupted"


def test_seed_builtin_gives_an_llm_campaign_a_verified_start(tmp_path):
    store, requests = _run_in_process(tmp_path, Script(), rounds=2, seed_builtin=True)
    by_id = {c.candidate_id: c for c in store.candidates("level1/01_relu")}
    seed = by_id["level1-01-relu-r0-c1"]  # the slot after the K=1 Coder slot
    assert seed.accepted and seed.mode == "initial"
    assert (store.path / seed.source_path).read_text().startswith("# kernelloop-builtin:")
    # The seed's configs are stored with it; the LLM Coder's kernels have none.
    assert seed.builtin_config["templates"] == ["elementwise"]
    assert by_id["level1-01-relu-r0-c0"].builtin_config is None
    assert not by_id["level1-01-relu-r0-c0"].accepted  # the Coder's first kernel is wrong
    # A correct kernel existed after round 0, so round 1 optimised from it instead of repairing.
    assert by_id["level1-01-relu-r1-c0"].mode == "optimize"
    assert by_id["level1-01-relu-r1-c0"].parent_id == "level1-01-relu-r0-c1"
