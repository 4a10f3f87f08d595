#!/bin/bash
# GPU check: run tests/gpu, then evaluate the bundled level-1 known-good solutions with timing.
#   scripts/gpu_check.sh OUT_DIR [extra args for benchmarks/gpu_check.py]
# Writes OUT_DIR/gpu_check.json (GPU, driver, versions, per-problem medians and speedups),
# OUT_DIR/verdict-*.json and OUT_DIR/gpu_tests.log. Needs a CUDA GPU; aims at < 8 minutes.
set -uo pipefail
OUT=${1:?usage: scripts/gpu_check.sh OUT_DIR [benchmark args]}
shift
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ] && PY=.venv/bin/python
mkdir -p "$OUT"
cd "$(dirname "$0")/.."
if ! "$PY" -c "import kernelloop.sandbox" 2>/dev/null; then
    # GPU images bring their own torch/triton: install only the project, without resolving deps.
    "$PY" -m pip install -q --no-deps --no-build-isolation -e . || exit 2
fi
export PYTHONUNBUFFERED=1 KERNELLOOP_TIMING_BUDGET_MS=${KERNELLOOP_TIMING_BUDGET_MS:-300}
"$PY" -m kernelloop.cli doctor | tee "$OUT/doctor.txt"
timeout 180 "$PY" -m pytest -q -p no:cacheprovider tests/gpu 2>&1 | tee "$OUT/gpu_tests.log"
"$PY" benchmarks/gpu_check.py "$OUT" "$@"
