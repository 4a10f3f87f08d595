"""How much of a KernelBench level the builtin coder verifies, as a new user would run it.

    python benchmarks/kernelbench_coverage.py KERNELBENCH_LEVEL_DIR [--only REGEX] [--limit N]
                                              [--json PATH] [--markdown PATH]

Runs ``kernelloop optimize DIR --coder builtin`` (no size flags: on a CPU every problem is
evaluated at its derived size, with derived hold-outs) in a subprocess, exactly the CLI path,
then reads the run store: per problem its status, the named reason it stopped, the codes of its
last verdict and its minutes. Every file of the folder is counted; a file that is no problem,
a problem reported as not evaluable and a crash all count as unsolved. ``--only``/``--limit``
select a subset (through a folder of links, so nothing is copied).

The KernelBench files are read from your checkout; none are stored here.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path


def _selection(folder: Path, only: str | None, limit: int | None) -> list[Path]:
    files = sorted(folder.glob("*.py"), key=lambda p: (len(p.stem.split("_")[0]), p.name))
    if only:
        files = [f for f in files if re.search(only, f.name)]
    return files[:limit] if limit else files


def _reason(problem: dict, last_codes: list[str]) -> str:
    if problem["status"] == "solved":
        return ""
    why = problem.get("stop_reason") or ""
    if last_codes:
        why = f"{why} [{', '.join(last_codes)}]" if why else ", ".join(last_codes)
    return why or problem["status"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path, help="e.g. <KernelBench checkout>/KernelBench/level1")
    ap.add_argument("--only", help="a regular expression the file names must match")
    ap.add_argument("--limit", type=int, help="at most this many files (in file-number order)")
    ap.add_argument("--json", type=Path, help="write the table and totals here")
    ap.add_argument("--markdown", type=Path, help="write the table as Markdown here")
    args = ap.parse_args()
    files = _selection(args.folder, args.only, args.limit)
    if not files:
        print(f"no problem files in {args.folder}", file=sys.stderr)
        return 2

    from kernelloop.runs.store import RunStore

    with tempfile.TemporaryDirectory(prefix="kl-coverage-") as tmp:
        picked = Path(tmp) / args.folder.name
        picked.mkdir()
        for f in files:
            (picked / f.name).symlink_to(f.resolve())
        runs = Path(tmp) / "runs"
        started = time.monotonic()
        cmd = [sys.executable, "-m", "kernelloop.cli", "optimize", str(picked),
               "--coder", "builtin", "--run-dir", str(runs)]  # fmt: skip
        print("$", " ".join(cmd), flush=True)
        done = subprocess.run(cmd, check=False)
        minutes = (time.monotonic() - started) / 60
        (run,) = [p for p in runs.iterdir() if p.is_dir()]
        store = RunStore.open(run)
        summary = store.summary()
        rows = []
        seen = set()
        for p in summary["problems"]:
            cands = store.candidates(p["problem_id"])
            last = store.verdict_for(cands[-1].candidate_id) if cands else None
            codes = last.codes if last and not last.accepted else []
            seen.add(p["problem_id"])
            rows.append(
                {
                    "problem": p["problem_id"],
                    "verified": p["status"] == "solved",
                    "reason": _reason(p, codes),
                    "size": last.sizes.get("main") if last else None,
                    "minutes": round(p["minutes"] or 0.0, 2),
                }
            )
        for f in files:  # files the campaign skipped (no problem) or never reached
            if f.stem not in seen:
                why = "not loaded or not run (see the campaign's output)"
                row = {"problem": f.stem, "verified": False, "size": None, "minutes": 0.0}
                rows.append({**row, "reason": why})

    verified = sum(r["verified"] for r in rows)
    totals = {
        "files": len(files),
        "verified": verified,
        "percent": round(100 * verified / len(files), 1),
        "minutes": round(minutes, 1),
        "campaign_exit": done.returncode,
        "reasons": Counter(r["reason"].split(":")[0] for r in rows if not r["verified"]),
        "machine": f"{platform.machine()}, {_cores()} cores, Python {platform.python_version()}",
        "folder": args.folder.name,
        "selection": {"only": args.only, "limit": args.limit},
    }
    print(f"\n{verified}/{len(files)} verified ({totals['percent']}%) in {minutes:.1f} min")
    for r in rows:
        if not r["verified"]:
            print(f"  {r['problem']}: {r['reason'][:160]}")
    if args.json:
        args.json.write_text(json.dumps({"totals": totals, "rows": rows}, indent=1) + "\n")
    if args.markdown:
        lines = ["| problem | verified | derived size | minutes | reason |", "|" + "---|" * 5]
        for r in rows:
            size = ", ".join(f"{k}={v}" for k, v in (r["size"] or {}).items())
            reason = r["reason"].replace("|", "/")[:200]
            mark = "yes" if r["verified"] else "no"
            lines.append(f"| {r['problem']} | {mark} | {size} | {r['minutes']} | {reason} |")
        head = f"{verified}/{len(files)} verified ({totals['percent']}%), {minutes:.1f} min\n\n"
        args.markdown.write_text(head + "\n".join(lines) + "\n")
    return 0


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    sys.exit(main())
