"""The builtin judge's search: diagnosis rules, move selection, and a whole campaign on fake GPU
verdicts whose time depends on the config (so the search has something real to climb)."""

from __future__ import annotations

import json
import math

import pytest
from paths import TESTS

from kernelloop.agents import campaign
from kernelloop.agents.builtin import module, search
from kernelloop.agents.builtin.measure import measurements
from kernelloop.agents.state import CampaignOptions
from kernelloop.feedback import gpu_specs, ncu, roofline
from kernelloop.kernelbench import loader
from kernelloop.sandbox.stats import bootstrap_ratio, summarize
from kernelloop.sandbox.verdict import CorrectnessResult, TimingResult, TrialResult, Verdict

pytest.importorskip("langgraph")

H100 = "NVIDIA H100 80GB HBM3"
KNOBS = {"BLOCK": (256, 512, 1024, 2048, 4096), "num_warps": (1, 2, 4, 8)}
FIXTURES = TESTS / "fixtures" / "ncu"
# 64 M float32 elements in and out, no FLOPs: an elementwise op.
COPY = roofline.Work(flops=0.0, bytes=2 * 64 * 2**20 * 4, flops_source="none")


def _timed(ms: float, work=COPY, accepted=True, problem="level1/01_relu") -> Verdict:
    spec = gpu_specs.lookup(H100)
    times = [ms * (1 + 0.001 * (i % 5 - 2)) for i in range(50)]
    eager = [2.0 * (1 + 0.001 * (i % 3)) for i in range(50)]
    bps, fps = roofline.achieved(work, ms / 1e3)
    timing = TimingResult(
        gpu=H100,
        candidate=summarize(times),
        eager=summarize(eager),
        compiled=None,
        speedup_eager=bootstrap_ratio(eager, times),
        speedup_compile=None,
        order=["candidate", "eager"],
        achieved_gbps=bps / 1e9,
        achieved_tflops=fps / 1e12,
        fraction_of_peak=roofline.fraction_of_roofline(work, spec, "float32", ms / 1e3),
    )
    return Verdict(
        accepted=accepted,
        reasons=[],
        problem_id=problem,
        size="gpu",
        backend="triton",
        device=H100,
        sandbox="bwrap",
        correctness=CorrectnessResult(passed=True, trials=[TrialResult("main", True)]),
        timing=timing,
    )


# --- diagnosis ----------------------------------------------------------------------------------
def test_spills_and_register_limited_occupancy_ask_for_smaller_tiles_first():
    moves = search.diagnose(search.Feedback(spills=True, occupancy_limiter="registers"), KNOBS)
    assert moves[0] == ("BLOCK", -1, "register spills: smaller tiles")
    assert ("num_warps", +1, "occupancy limited by registers: more warps") in moves


def test_memory_bound_below_60_percent_asks_for_wider_blocks_but_not_above():
    slow = search.diagnose(search.Feedback("memory-bound", 0.35), KNOBS)
    assert slow[0][:2] == ("BLOCK", +1) and "35% of peak bandwidth" in slow[0][2]
    assert search.diagnose(search.Feedback("memory-bound", 0.85), KNOBS) == []


def test_compute_and_latency_bound_move_tiles_in_opposite_directions():
    knobs = {"BLOCK_M": (32, 64, 128), "num_stages": (2, 3, 4)}
    up = search.diagnose(search.Feedback("compute-bound"), knobs)
    down = search.diagnose(search.Feedback("latency-bound"), knobs)
    assert ("BLOCK_M", +1) in [m[:2] for m in up] and ("BLOCK_M", -1) in [m[:2] for m in down]
    assert ("num_stages", +1) in [m[:2] for m in up]


def test_occupancy_limiter_from_nsight_compute_counters():
    agg = ncu.parse_csv((FIXTURES / "relu_default.csv").read_text()).aggregate()
    # The synthetic fixture ties the register and warp limits (8 blocks each): not register-bound.
    assert search.limiter(agg) == "warps"
    agg["launch__occupancy_limit_registers"] = (2.0, "block")
    assert search.limiter(agg) == "registers"
    assert search.limiter(None) is None


def test_measurements_from_a_gpu_verdict():
    m = measurements(_timed(0.5), dtype="float32")  # 512 MiB in 0.5 ms: ~1.07 TB/s of 3.35
    assert m["bound"] == "memory-bound"
    assert 0.25 < m["bandwidth_fraction"] < 0.4


# --- choosing configs -----------------------------------------------------------------------------
def test_next_configs_start_from_the_fastest_accepted_and_never_repeat():
    trials = [
        search.Trial({"BLOCK": 1024, "num_warps": 4}, True, 1.0),
        search.Trial({"BLOCK": 2048, "num_warps": 4}, True, 0.8),
        search.Trial({"BLOCK": 4096, "num_warps": 4}, False, None),  # rejected: tried, not retried
    ]
    out = search.next_configs(KNOBS, trials, search.Feedback("memory-bound", 0.3), k=3)
    configs = [p.config for p in out]
    assert {"BLOCK": 4096, "num_warps": 4} not in configs
    assert configs[0] == {"BLOCK": 2048, "num_warps": 8}  # more loads in flight, from the best
    # Every other neighbour of the best was measured already (or rejected): two remain.
    assert configs == [{"BLOCK": 2048, "num_warps": 8}, {"BLOCK": 2048, "num_warps": 2}]


def test_search_ends_at_a_local_optimum():
    best = {"BLOCK": 512, "num_warps": 2}
    trials = [search.Trial(best, True, 0.5)]
    trials += [
        search.Trial(p.config, True, 0.9)
        for p in search.next_configs(KNOBS, trials, search.Feedback(), 8)
    ]
    assert search.next_configs(KNOBS, trials, search.Feedback(), 4) == []


def _config_of(source: str) -> dict:
    """The main segment's config, as the fake GPU reads it from the generated file's first line
    (a comment for readers: the campaign keeps the configs in the run store, with the candidate)."""
    return json.loads(source.splitlines()[0].removeprefix(module.MARKER))["configs"][0]


def _campaign(problems, options, evaluate, runs_dir, resume=None):
    """A builtin campaign over ``problems`` with a fake evaluator; its run store."""
    store = campaign.open_store(problems, coder_model="builtin", judge_model="builtin",
                                options=options, base_url=None, runs_dir=runs_dir,
                                resume=resume)  # fmt: skip
    campaign.run(store, problems, coder_model="builtin", judge_model="builtin",
                 options=options, evaluate=evaluate)  # fmt: skip
    return store


# --- a whole builtin campaign on fake GPU verdicts ----------------------------------------------
def _cost(config: dict) -> float:
    """A made-up landscape with its minimum at BLOCK=2048, num_warps=8."""
    return (
        0.4
        + 0.1 * abs(math.log2(config["BLOCK"] / 2048))
        + 0.05 * abs(math.log2(config["num_warps"] / 8))
    )


def test_builtin_campaign_climbs_to_the_best_config_on_timed_verdicts(tmp_path):
    (problem,) = loader.load("level1/01_relu")
    seen: list[dict] = []

    def evaluate(p, source):
        config = _config_of(source)
        seen.append(config)
        return _timed(_cost(config))

    options = CampaignOptions(rounds=8, candidates=2, plateau_rounds=8)
    store = _campaign([problem], options, evaluate, tmp_path)
    best = store.best_candidate("level1/01_relu")
    assert best.builtin_config["configs"][0] == {"BLOCK": 2048, "num_warps": 8}
    assert len(seen) < 20  # 20 configs in the space: the search did not sweep them all
    assert len({tuple(sorted(c.items())) for c in seen}) == len(seen)  # nothing measured twice
    advice = [a.advice for a in store.advice("level1/01_relu")]
    assert "memory-bound" in advice[0]["diagnosis"]
    (row,) = store.problems()
    assert row.status == "solved"
    assert not store.spend()["calls"]  # no LLM was asked anything


def test_spills_reported_by_the_worker_reach_the_search():
    from kernelloop.feedback.static_resources import from_launched
    from kernelloop.feedback.summary import judge_summary
    from kernelloop.sandbox.guards import resources_of
    from kernelloop.sandbox.verdict import Verdict

    class Compiled:  # what Triton's CompiledKernel exposes after loading on a GPU
        n_regs, n_spills = 255, 12

        class metadata:
            num_warps, num_stages, shared = 8, 3, 49152

    entry = resources_of("_s0_kernel", Compiled())
    assert entry == {"kernel": "_s0_kernel", "registers": 255, "spills": 12, "num_warps": 8,
                     "num_stages": 3, "shared_bytes": 49152}  # fmt: skip
    verdict = _timed(0.5)
    verdict.timing.kernels = [entry]
    verdict = Verdict.from_dict(verdict.to_dict())  # survives the run store
    assert measurements(verdict)["spills"] is True
    (res,) = from_launched(verdict.timing.kernels)
    assert res.registers_per_thread == 255 and res.spills and res.local_bytes == 48
    text = judge_summary(verdict, static=[res])
    assert "255" in text and "_s0_kernel" in text


def test_minutes_budget_is_for_the_whole_campaign(tmp_path):
    import time

    problems = [*loader.load("level1/01_relu"), *loader.load("level1/02_gelu")]

    def slow(p, source):
        time.sleep(1.5)  # the first problem alone spends the whole budget
        return _timed(0.5, problem=p.id)

    options = CampaignOptions(rounds=4, candidates=1, budget_minutes=0.02)  # 1.2 s
    store = _campaign(problems, options, slow, tmp_path)
    assert len(store.candidates("level1/01_relu")) == 1
    assert store.candidates("level1/02_gelu") == []  # nothing left for the second problem
    # ...and it is recorded as interrupted by the budget, not left "running"...
    gelu = next(p for p in store.summary()["problems"] if p["problem_id"] == "level1/02_gelu")
    assert gelu["status"] == "interrupted" and gelu["stop_reason"].startswith("budget")
    # ...so that a resumed sitting, with a budget of its own, takes it up where it stopped
    more = CampaignOptions(rounds=4, candidates=1, budget_minutes=0.03)
    again = _campaign(problems, more, slow, tmp_path, resume=store.run_id)
    assert len(again.candidates("level1/01_relu")) == 1  # finished before: not run again
    assert again.candidates("level1/02_gelu")  # its turn came
    gelu = next(p for p in again.summary()["problems"] if p["problem_id"] == "level1/02_gelu")
    assert gelu["status"] == "solved" and gelu["stop_reason"].startswith("budget")


def test_a_resumed_sitting_keeps_the_campaign_but_takes_its_own_budgets(tmp_path, monkeypatch):
    import io

    from rich.console import Console

    from kernelloop import campaign_cli

    problems = loader.load("level1/01_relu")
    stored = CampaignOptions(rounds=3, candidates=2, budget_minutes=2.0)
    store = campaign.open_store(problems, coder_model="builtin", judge_model="builtin",
                                options=stored, base_url=None, runs_dir=tmp_path,
                                resume=None)  # fmt: skip
    seen = {}
    monkeypatch.setattr(campaign, "run", lambda *a, options, **k: seen.setdefault("o", options))
    now = CampaignOptions(rounds=9, candidates=9, budget_minutes=7.5)
    campaign_cli.run_optimize(
        Console(file=io.StringIO()), problems=[], coder=None, judge=None,
        base_url=None, options=now, run_dir=tmp_path, resume=store.run_id, fail=RuntimeError,
    )  # fmt: skip
    o = seen["o"]
    assert (o.rounds, o.candidates, o.budget_minutes) == (3, 2, 7.5)


def test_a_config_too_big_for_the_gpu_is_retried_smaller_not_halted(tmp_path):
    from kernelloop.sandbox import reasons as codes
    from kernelloop.sandbox.verdict import Reason

    (problem,) = loader.load("level1/01_relu")
    seen: list[dict] = []
    default_block = None

    def evaluate(p, source):
        nonlocal default_block
        config = _config_of(source)
        seen.append(config)
        default_block = default_block or config["BLOCK"]
        if config["BLOCK"] >= default_block:  # as if the default asked for too much shared memory
            v = _timed(1.0, accepted=False)
            v.timing = None
            msg = ("trial main-given-1: OutOfResources: out of resource: shared memory, "
                   "Required: 270336, Hardware limit: 232448 (in _s0_relu)")  # fmt: skip
            v.reasons = [Reason(codes.RUNTIME_ERROR, msg)]
            return v
        return _timed(_cost(config))

    options = CampaignOptions(rounds=3, candidates=1, plateau_rounds=8)
    store = _campaign([problem], options, evaluate, tmp_path)
    assert len(seen) >= 2 and seen[1]["BLOCK"] < seen[0]["BLOCK"]
    best = store.best_candidate("level1/01_relu")
    assert best is not None and best.accepted
    advice = [a.advice for a in store.advice("level1/01_relu")]
    assert "did not fit the GPU" in advice[0]["diagnosis"]


def test_smaller_configs_cut_stages_first_then_the_largest_tile():
    assert search.smaller_configs(KNOBS, {"BLOCK": 256, "num_warps": 1}, [], 2) == []
    knobs = {"BLOCK_M": (32, 64), "BLOCK_N": (32, 64, 128), "num_stages": (2, 3)}
    out = search.smaller_configs(knobs, {"BLOCK_M": 64, "BLOCK_N": 128, "num_stages": 3}, [], 3)
    assert [p.config for p in out] == [
        {"BLOCK_M": 64, "BLOCK_N": 128, "num_stages": 2},  # stages first: shared memory
        {"BLOCK_M": 64, "BLOCK_N": 64, "num_stages": 3},  # then the largest tile
        {"BLOCK_M": 32, "BLOCK_N": 128, "num_stages": 3},
    ]


def test_a_wrong_kernel_halts_the_search(tmp_path):
    from kernelloop.sandbox import reasons as codes
    from kernelloop.sandbox.verdict import Reason

    (problem,) = loader.load("level1/01_relu")

    def evaluate(p, source):
        v = _timed(1.0, accepted=False)
        v.timing, v.reasons = None, [Reason(codes.WRONG_OUTPUT, "12 of 4096 elements outside")]
        return v

    options = CampaignOptions(rounds=3, candidates=1)
    store = _campaign([problem], options, evaluate, tmp_path)
    (row,) = store.problems()
    assert len(store.candidates("level1/01_relu")) == 1  # smaller tiles would not make it right
    assert row.stop_reason == "the builtin kernel was rejected (WRONG_OUTPUT)"
