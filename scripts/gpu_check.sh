#!/bin/bash
# GPU check: tests/gpu, the bundled level-1 solutions evaluated with timing, Nsight Compute on two
# of them, module benchmarks, and a builtin-coder campaign over level 1.
#   scripts/gpu_check.sh OUT_DIR [extra args for benchmarks/gpu_check.py]
#   STAGES="builtin" scripts/gpu_check.sh OUT_DIR      # one stage (tests eval ncu modules builtin)
# Writes OUT_DIR/gpu_check.json (GPU, driver, versions, per-problem medians and speedups),
# OUT_DIR/verdict-*.json, OUT_DIR/ncu-*.csv|json, OUT_DIR/modules.json, OUT_DIR/builtin.json
# (fast_1, geomean speedups vs eager and torch.compile) and the logs. Needs a CUDA GPU; each stage
# has a time cap (seconds, overridable) so that all of them fit in one 10-minute call.
set -uo pipefail
OUT=${1:?usage: scripts/gpu_check.sh OUT_DIR [benchmark args]}
shift
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ] && PY=.venv/bin/python
mkdir -p "$OUT"
STAGES=" ${STAGES:-tests eval ncu modules builtin} "
want() { case "$STAGES" in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
    # Packages the GPU image lacks (langgraph for the builtin campaign), carried as wheels.
    "$PY" -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
if ! "$PY" -c "import kernelloop.sandbox" 2>/dev/null; then
    # GPU images bring their own torch/triton: install only the project, without resolving deps.
    "$PY" -m pip install -q --no-deps --no-build-isolation -e . || exit 2
fi
export PYTHONUNBUFFERED=1 KERNELLOOP_TIMING_BUDGET_MS=${KERNELLOOP_TIMING_BUDGET_MS:-300}
"$PY" -m kernelloop.cli doctor | tee "$OUT/doctor.txt"
want tests && timeout "${GPU_TESTS_TIMEOUT:-120}" "$PY" -m pytest -q -p no:cacheprovider tests/gpu \
    2>&1 | tee "$OUT/gpu_tests.log"
want eval && "$PY" benchmarks/gpu_check.py "$OUT" --max-seconds "${GPU_EVAL_SECONDS:-120}" "$@" \
    2>&1 | tee "$OUT/gpu_check.log"
# Nsight Compute on two bundled solutions: the raw CSVs ($OUT/ncu-<name>.csv) are what a later
# session commits as real fixtures (tests/fixtures/ncu/ holds synthetic ones until then). Where
# the driver restricts counters to admins, root retries with the trusted-candidate escape hatch.
if ! want ncu; then
    :
elif command -v ncu >/dev/null; then
    for name in 01_relu 14_matmul_square; do
        prof=("$PY" -m kernelloop.cli profile "level1/$name"
              "kernelbench/problems/level1/solutions/$name.py" --no-eval --json
              --timeout 90 --raw-out "$OUT/ncu-$name.csv")
        timeout "${NCU_TIMEOUT:-60}" "${prof[@]}" >"$OUT/ncu-$name.json" 2>"$OUT/ncu-$name.log"
        rc=$?
        if grep -q ERR_NVGPUCTRPERM "$OUT/ncu-$name.log" && [ "$(id -u)" = 0 ]; then
            timeout "${NCU_TIMEOUT:-60}" "${prof[@]}" --sandbox process --admin-counters \
                >"$OUT/ncu-$name.json" 2>>"$OUT/ncu-$name.log"
            rc=$?
        fi
        echo "ncu $name: exit $rc, $(wc -c <"$OUT/ncu-$name.json") bytes of JSON" \
            | tee -a "$OUT/ncu.log"
    done
else
    echo "ncu not on PATH: Nsight Compute stage skipped" | tee "$OUT/ncu.log"
fi
want modules && timeout "${MODULES_TIMEOUT:-90}" "$PY" benchmarks/modules.py \
    --out "$OUT/modules.json" 2>&1 | tee "$OUT/modules.log"
# The builtin coder and judge on level 1, timed: fast_1 and geomean speedups land in builtin.json
# (a run cut by the cap still reports what it finished: the run store is written as it goes).
if want builtin; then
    if "$PY" -c "import langgraph" 2>/dev/null; then
        timeout "${BUILTIN_TIMEOUT:-150}" "$PY" -m kernelloop.cli optimize level1 --coder builtin \
            --rounds "${BUILTIN_ROUNDS:-2}" --candidates 2 --run-dir "$OUT/runs" \
            >"$OUT/builtin.log" 2>&1
        tail -n 5 "$OUT/builtin.log"
        run=$(ls -1t "$OUT/runs" | head -n 1)
        "$PY" -m kernelloop.cli runs show "$run" --run-dir "$OUT/runs" --json >"$OUT/builtin.json"
        "$PY" -c "import json,sys; s=json.load(open(sys.argv[1]))['summary']; print('builtin:', {k: s.get(k) for k in ('correct_pct', 'fast_1', 'geomean_speedup_eager', 'geomean_speedup_compile', 'timed_problems')})" "$OUT/builtin.json"
    else
        echo "langgraph missing: carry its wheels in .whl/ (docs/status.md); builtin stage skipped" \
            | tee "$OUT/builtin.log"
    fi
fi
