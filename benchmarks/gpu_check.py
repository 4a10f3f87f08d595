"""Evaluate bundled known-good solutions with timing on this machine's GPU; write a JSON report.

    python benchmarks/gpu_check.py OUT_DIR [--level level1] [--only ID ...] [--max-seconds S]

Each problem goes through the one evaluator (``kernelloop.sandbox.evaluate``) at its GPU size, so
the numbers here are exactly what ``kernelloop eval`` reports: medians with IQR and n, speedups
against eager PyTorch and ``torch.compile`` with bootstrap 95% intervals, achieved bandwidth and
FLOP/s, fraction of the roofline. The report names the GPU, driver and software versions.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import platform
import subprocess
import sys
import time
from pathlib import Path


def _versions() -> dict:
    import torch
    import triton

    driver = subprocess.run(
        ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    props = torch.cuda.get_device_properties(0)
    return {
        "gpu": props.name,
        "compute_capability": f"{props.major}.{props.minor}",
        "sms": props.multi_processor_count,
        "driver": driver,
        "cuda": torch.version.cuda,
        "torch": torch.__version__,
        "triton": triton.__version__,
        "python": platform.python_version(),
    }


def _row(problem_id: str, v, seconds: float) -> dict:
    row = {
        "problem": problem_id,
        "accepted": v.accepted,
        "codes": v.codes,
        "reasons": [r.message[:300] for r in v.reasons],
        "eval_seconds": round(seconds, 1),
        "phases_s": v.phases,
        "slowest_steps_s": dict(sorted(v.phase_detail.items(), key=lambda kv: -kv[1])[:6]),
    }
    t = v.timing
    if t:
        row.update(
            candidate_ms={"median": t.candidate.median, "iqr": t.candidate.iqr, "n": t.candidate.n},
            eager_ms={"median": t.eager.median, "iqr": t.eager.iqr, "n": t.eager.n},
            compile_ms={"median": t.compiled.median, "iqr": t.compiled.iqr, "n": t.compiled.n}
            if t.compiled
            else None,
            speedup_eager=[t.speedup_eager.point, t.speedup_eager.low, t.speedup_eager.high],
            speedup_compile=[t.speedup_compile.point, t.speedup_compile.low, t.speedup_compile.high]
            if t.speedup_compile
            else None,
            achieved_gbps=t.achieved_gbps,
            achieved_tflops=t.achieved_tflops,
            fraction_of_roofline=t.fraction_of_peak,
            roofline_floor_ms=t.roofline_floor_ms,
            wall_ms_per_call=t.wall_ms_per_call,
            order=t.order,
            notes=t.notes,
        )
    return row


def _summary(rows: list[dict]) -> dict:
    timed = [r for r in rows if r.get("speedup_eager")]
    out: dict = {
        "problems": len(rows),
        "accepted": sum(r["accepted"] for r in rows),
        "timed": len(timed),
    }
    for key in ("speedup_eager", "speedup_compile"):
        vals = [r[key] for r in timed if r.get(key)]
        if vals:
            out[f"geomean_{key}"] = math.exp(sum(math.log(v[0]) for v in vals) / len(vals))
            # fast_1: accepted and the speedup's lower 95% bound beats 1.0
            out[f"fast_1_{key}"] = sum(
                1 for r in timed if r["accepted"] and r.get(key) and r[key][1] > 1.0
            ) / len(rows)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--level", default="level1")
    ap.add_argument("--only", nargs="*", default=None, help="problem ids or stems")
    ap.add_argument("--max-seconds", type=float, default=420, help="stop starting new problems")
    args = ap.parse_args()

    import torch

    from kernelloop.kernelbench import loader
    from kernelloop.sandbox.evaluate import evaluate

    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device; nothing to measure", file=sys.stderr)
        return 2
    problems = [p for p in loader.load(args.level) if loader.solution_path(p)]
    if args.only:
        problems = [p for p in problems if any(o in p.id for o in args.only)]
    started, rows = time.perf_counter(), []
    report = {"date": datetime.date.today().isoformat(), **_versions(), "results": rows}
    args.out_dir.mkdir(parents=True, exist_ok=True)
    path = args.out_dir / "gpu_check.json"
    for p in problems:
        if time.perf_counter() - started > args.max_seconds:
            report.setdefault("skipped_for_time", []).append(p.id)
            continue
        t0 = time.perf_counter()
        v = evaluate(p, loader.solution_path(p).read_text())
        rows.append(_row(p.id, v, time.perf_counter() - t0))
        (args.out_dir / f"verdict-{p.id.replace('/', '-')}.json").write_text(v.to_json(indent=1))
        r = rows[-1]
        print(
            f"{p.id:40s} accepted={r['accepted']!s:5s} "
            f"cand={r.get('candidate_ms', {}).get('median', float('nan')):.4f} ms "
            f"eager={r.get('eager_ms', {}).get('median', float('nan')):.4f} ms "
            f"speedup={r.get('speedup_eager')} codes={r['codes']}",
            flush=True,
        )
        report["summary"] = _summary(rows)
        path.write_text(json.dumps(report, indent=1))  # rewritten each time: nothing lost
    print(json.dumps(report["summary"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
