#!/bin/bash
# GPU check: tests/gpu, the bundled level-1 solutions evaluated with timing, module benchmarks.
#   scripts/gpu_check.sh OUT_DIR [extra args for benchmarks/gpu_check.py]
# Writes OUT_DIR/gpu_check.json (GPU, driver, versions, per-problem medians and speedups),
# OUT_DIR/verdict-*.json, OUT_DIR/modules.json and the logs. Needs a CUDA GPU; each stage has a
# time cap so the whole script stays under about 8 minutes.
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
timeout "${MODULES_TIMEOUT:-120}" "$PY" benchmarks/modules.py --out "$OUT/modules.json" 2>&1 \
    | tee "$OUT/modules.log"
