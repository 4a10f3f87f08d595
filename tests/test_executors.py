"""Executors: the local queues and the Ray executor return the same verdicts as the evaluator.

Ray runs as a local cluster started here on CPU, once for the module, with GPUs declared as a
custom resource (``test_gpu``) so the executor's GPU scheduling path is the one exercised. The
campaign test runs the same scripted campaign with ``executor="local"`` and ``executor="ray"``
and compares every verdict.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from fake_openai import FakeOpenAI
from paths import REPO

from kernelloop.agents import campaign
from kernelloop.agents.state import CampaignOptions
from kernelloop.kernelbench import loader
from kernelloop.sandbox import evaluate as evaluate_mod
from kernelloop.sandbox import executors, launch
from kernelloop.sandbox.executors.local import LocalExecutor

SOLUTIONS = REPO / "kernelbench/problems/level1/solutions"
RELU, GELU = "level1/01_relu", "level1/02_gelu"
RIGHT = {RELU: (SOLUTIONS / "01_relu.py").read_text(), GELU: (SOLUTIONS / "02_gelu.py").read_text()}
# Each runs and launches its kernel, and is wrong: relu off by one; gelu computed as relu.
WRONG = {
    RELU: RIGHT[RELU].replace("tl.maximum(x, 0.0)", "tl.maximum(x, 0.0) + 1.0"),
    GELU: RIGHT[RELU],
}
assert WRONG[RELU] != RIGHT[RELU]


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray", reason="the cluster extra is not installed")
    ray.init(
        num_cpus=2,
        resources={"test_gpu": 2},
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
    )
    try:
        yield ray
    finally:
        ray.shutdown()


def _outcome(verdict) -> tuple:
    return verdict.problem_id, verdict.accepted, tuple(verdict.codes), verdict.sandbox


def test_local_executor_returns_the_evaluators_verdicts_in_submission_order():
    problem = loader.load_one(RELU)
    with_local = LocalExecutor(executors.EvalSpec(sandbox="process"), cpu_workers=2)
    try:
        futures = [with_local.submit(problem, src) for src in (WRONG[RELU], RIGHT[RELU])]
        got = [_outcome(f.result()) for f in futures]
    finally:
        with_local.close()
    assert got == [
        (RELU, False, ("WRONG_OUTPUT",), "process"),
        (RELU, True, (), "process"),
    ]


def test_local_gpu_queues_hold_one_evaluation_per_gpu(monkeypatch):
    """Scheduling only (no GPU here): the evaluator is replaced by a recorder."""
    running: dict[int, int] = {0: 0, 1: 0}
    worst, seen, lock = {0: 0, 1: 0}, [], threading.Lock()

    def fake_evaluate(problem, source, **_):
        gpu = launch.assigned_gpu.get()
        with lock:
            running[gpu] += 1
            worst[gpu] = max(worst[gpu], running[gpu])
            seen.append(gpu)
        time.sleep(0.05)
        with lock:
            running[gpu] -= 1
        return source

    monkeypatch.setattr(evaluate_mod, "evaluate", fake_evaluate)
    local = LocalExecutor(executors.EvalSpec(), gpus=2)
    try:
        assert local.parallelism == 2
        results = [f.result() for f in [local.submit(None, str(i)) for i in range(8)]]
    finally:
        local.close()
    assert results == [str(i) for i in range(8)]
    assert worst == {0: 1, 1: 1}, "two evaluations shared a GPU"
    assert sorted(set(seen)) == [0, 1] and seen.count(0) == seen.count(1) == 4
    assert launch.assigned_gpu.get() is None  # nothing leaks into the caller


def test_ray_executor_schedules_on_the_gpu_resource_and_matches_local(ray_cluster):
    from kernelloop.sandbox.executors.ray_cluster import RayExecutor

    problem = loader.load_one(RELU)
    spec = executors.EvalSpec(sandbox="process")
    on_ray = RayExecutor(spec, gpu_resource="test_gpu")
    assert on_ray.task_options == {"num_cpus": 1, "resources": {"test_gpu": 1}}
    assert on_ray.parallelism == 2
    futures = [on_ray.submit(problem, src) for src in (WRONG[RELU], RIGHT[RELU])]
    remote = [f.result(timeout=300) for f in futures]
    on_ray.close()  # the fixture's cluster: not shut down by the executor
    assert ray_cluster.is_initialized()
    local = LocalExecutor(spec)
    try:
        here = [local(problem, src) for src in (WRONG[RELU], RIGHT[RELU])]
    finally:
        local.close()
    assert [_outcome(v) for v in remote] == [_outcome(v) for v in here]
    assert remote[1].accepted and remote[0].correctness.trials  # really ran, on Ray
    assert remote[0].worker["isolation"] == here[0].worker["isolation"]


def test_ray_executor_names_a_missing_resource(ray_cluster):
    from kernelloop.sandbox.executors.ray_cluster import RayExecutor

    with pytest.raises(RuntimeError, match="no 'GPU' resource"):
        RayExecutor(executors.EvalSpec(), gpu_resource="GPU")


class _Script:
    """Per problem: the first Coder reply is wrong, the second right; the Judge advises."""

    def __init__(self):
        self.calls: dict[str, int] = {}
        self.lock = threading.Lock()

    def __call__(self, request: dict) -> str:
        messages = request["messages"]
        if "kernel engineer" not in messages[0]["content"]:
            return json.dumps(
                {"error_type": "none", "root_cause": "n/a", "fix": "n/a", "bottleneck": "memory",
                 "evidence": [], "change": "larger BLOCK", "expected_effect": "fewer programs"}
            )  # fmt: skip
        text = json.dumps(messages).lower()
        pid = GELU if "gelu" in text else RELU
        with self.lock:
            n = self.calls[pid] = self.calls.get(pid, 0) + 1
        source = WRONG[pid] if n % 2 == 1 else RIGHT[pid]
        return f"```python\n{source}\n```\n"


def _campaign(tmp_path: Path, executor: str) -> list[tuple]:
    problems = [loader.load_one(RELU), loader.load_one(GELU)]
    options = CampaignOptions(rounds=1, candidates=2, sandbox="process", executor=executor)
    with FakeOpenAI(responder=_Script()) as server:
        store = campaign.open_store(problems, coder_model="c", judge_model="j", options=options,
                                    base_url=server.base_url, runs_dir=tmp_path / executor,
                                    resume=None)  # fmt: skip
        campaign.run(store, problems, coder_model="c", judge_model="j", options=options,
                     base_url=server.base_url)  # fmt: skip
    summary = store.summary()
    assert summary["evaluated"] == 4 and summary["candidates_per_minute"] > 0
    assert summary["config"]["options"]["executor"] == executor
    return sorted(
        (c.problem_id, c.round, bool(c.accepted), tuple(c.codes or ())) for c in store.candidates()
    )


def test_a_campaign_gives_the_same_verdicts_with_local_and_ray(ray_cluster, tmp_path):
    local = _campaign(tmp_path, "local")
    remote = _campaign(tmp_path, "ray")
    assert remote == local
    # Each problem: one wrong and one right candidate, so both paths of the verdict are compared.
    assert sorted((p, ok) for p, _, ok, _ in local) == sorted(
        [(RELU, False), (RELU, True), (GELU, False), (GELU, True)]
    )
