#!/bin/bash
# GPU check: tests/gpu, the bundled level-1 solutions evaluated with timing, Nsight Compute on two
# of them, module benchmarks.
#   scripts/gpu_check.sh OUT_DIR [extra args for benchmarks/gpu_check.py]
# Writes OUT_DIR/gpu_check.json (GPU, driver, versions, per-problem medians and speedups),
# OUT_DIR/verdict-*.json, OUT_DIR/ncu-*.csv|json, OUT_DIR/modules.json and the logs. Needs a CUDA
# GPU; each stage has a time cap so the whole script stays under about 12 minutes.
set -uo pipefail
OUT=${1:?usage: scripts/gpu_check.sh OUT_DIR [benchmark args]}
shift
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ] && PY=.venv/bin/python
mkdir -p "$OUT"
if ! "$PY" -c "import kernelloop.sandbox" 2>/dev/null; then
    # GPU images bring their own torch/triton: install only the project, without resolving deps.
    "$PY" -m pip install -q --no-deps --no-build-isolation -e . || exit 2
fi
export PYTHONUNBUFFERED=1 KERNELLOOP_TIMING_BUDGET_MS=${KERNELLOOP_TIMING_BUDGET_MS:-300}
"$PY" -m kernelloop.cli doctor | tee "$OUT/doctor.txt"
timeout "${GPU_TESTS_TIMEOUT:-200}" "$PY" -m pytest -q -p no:cacheprovider tests/gpu 2>&1 \
    | tee "$OUT/gpu_tests.log"
"$PY" benchmarks/gpu_check.py "$OUT" --max-seconds "${GPU_EVAL_SECONDS:-180}" "$@" 2>&1 \
    | tee "$OUT/gpu_check.log"
# Nsight Compute on two bundled solutions: the raw CSVs ($OUT/ncu-<name>.csv) are what a later
# session commits as real fixtures (tests/fixtures/ncu/ holds synthetic ones until then). Where
# the driver restricts counters to admins, root retries with the trusted-candidate escape hatch.
if command -v ncu >/dev/null; then
    for name in 01_relu 14_matmul_square; do
        prof=("$PY" -m kernelloop.cli profile "level1/$name"
              "kernelbench/problems/level1/solutions/$name.py" --no-eval --json
              --timeout 90 --raw-out "$OUT/ncu-$name.csv")
        timeout "${NCU_TIMEOUT:-120}" "${prof[@]}" >"$OUT/ncu-$name.json" 2>"$OUT/ncu-$name.log"
        rc=$?
        if grep -q ERR_NVGPUCTRPERM "$OUT/ncu-$name.log" && [ "$(id -u)" = 0 ]; then
            timeout "${NCU_TIMEOUT:-120}" "${prof[@]}" --sandbox process --admin-counters \
                >"$OUT/ncu-$name.json" 2>>"$OUT/ncu-$name.log"
            rc=$?
        fi
        echo "ncu $name: exit $rc, $(wc -c <"$OUT/ncu-$name.json") bytes of JSON" \
            | tee -a "$OUT/ncu.log"
    done
else
    echo "ncu not on PATH: Nsight Compute stage skipped" | tee "$OUT/ncu.log"
fi
timeout "${MODULES_TIMEOUT:-120}" "$PY" benchmarks/modules.py --out "$OUT/modules.json" 2>&1 \
    | tee "$OUT/modules.log"
