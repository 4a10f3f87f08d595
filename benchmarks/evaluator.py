"""What one evaluation costs: wall time per problem, its phases and its slowest steps.

    python benchmarks/evaluator.py [PROBLEM ...] [--size cpu|gpu] [--set NAME=VALUE ...]
                                   [--repeat N] [--gap S] [--json PATH]

Each problem's bundled solution goes through the one evaluator (``kernelloop.sandbox.evaluate``)
``--repeat`` times in this process, as a campaign would: each evaluation leaves the next one's
worker warming, and ``--gap`` seconds pass between them (a campaign's Coder and Judge steps).
The first run pays for imports and start-up, later ones show the steady cost. Reported per
problem: the median wall time with its range, the median of each phase (static gate, reference,
candidate, compare) and the slowest steps inside them (``Verdict.phase_detail``). At GPU size an
evaluation moves gigabytes through files: this is the benchmark to run before and after changing
that path. Without a GPU, ``--size gpu --set ...`` exercises that path at a size a CPU can run,
e.g. ``level1/01_relu --size gpu --set batch_size=2048`` (256 MiB per tensor).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

DEFAULT = [
    "level1/01_relu",
    "level1/05_softmax",
    "level1/14_matmul_square",
    "level2/01_linear_bias_gelu",
]


def _machine() -> dict:
    import os

    import torch
    import triton

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "gpu": gpu,
        "cpu_cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "triton": triton.__version__,
    }


def run(problem_id: str, size: str | None, repeat: int, gap_s: float, sets: dict) -> dict:
    from kernelloop.kernelbench import loader
    from kernelloop.sandbox.evaluate import evaluate

    problem = loader.load_one(problem_id)
    source = loader.solution_path(problem).read_text()
    walls, verdicts = [], []
    for _ in range(repeat):
        time.sleep(gap_s)
        started = time.perf_counter()
        verdicts.append(evaluate(problem, source, size=size, sets=sets, warm_next=True))
        walls.append(time.perf_counter() - started)
    steady = verdicts[1:] or verdicts  # the first run pays for imports and caches

    def median_of(key: str) -> dict[str, float]:
        names = {n for v in steady for n in getattr(v, key)}
        return {n: round(statistics.median(getattr(v, key).get(n, 0.0) for v in steady), 3)
                for n in sorted(names)}  # fmt: skip

    detail = median_of("phase_detail")
    return {
        "problem": problem_id,
        "size": verdicts[0].size,
        "sets": sets,
        "device": verdicts[0].device,
        "accepted": all(v.accepted for v in verdicts),
        "wall_s": {
            "first": round(walls[0], 3),
            "median": round(statistics.median(walls[1:] or walls), 3),
            "min": round(min(walls), 3),
            "max": round(max(walls), 3),
            "n": len(walls),
        },
        "phases_s": median_of("phases"),
        "slowest_steps_s": dict(sorted(detail.items(), key=lambda kv: -kv[1])[:5]),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("problems", nargs="*", default=DEFAULT)
    ap.add_argument("--size", default=None, help="size profile (default: gpu on a GPU, else cpu)")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="NAME=VALUE",
                    help="override a module constant, as kernelloop eval --set")  # fmt: skip
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--gap", type=float, default=2.0, help="seconds between evaluations")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    from kernelloop.cli import _parse_sets

    sets = _parse_sets(args.sets)
    report = {"machine": _machine(), "date": time.strftime("%Y-%m-%d"), "gap_s": args.gap,
              "rows": []}  # fmt: skip
    for pid in args.problems:
        row = run(pid, args.size, max(1, args.repeat), args.gap, sets)
        report["rows"].append(row)
        w = row["wall_s"]
        phases = ", ".join(f"{k} {s:.2f}" for k, s in row["phases_s"].items())
        steps = ", ".join(f"{k} {s:.2f}" for k, s in row["slowest_steps_s"].items())
        print(f"{pid} [{row['size']}, {row['device']}] accepted={row['accepted']}: "
              f"{w['median']:.2f} s median (first {w['first']:.2f}, range {w['min']:.2f}-"
              f"{w['max']:.2f}, n={w['n']})\n  phases (s): {phases}\n  slowest steps (s): "
              f"{steps}", flush=True)  # fmt: skip
        if args.json:  # after each problem: a run cut short keeps what it measured
            args.json.write_text(json.dumps(report, indent=1))
    from kernelloop.sandbox import spare

    spare.discard_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
