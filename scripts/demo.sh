#!/bin/sh
# `make demo`: the main job on any machine, no API key needed.
# A campaign with the builtin coder (Triton kernels from templates matched to the traced
# reference) and the builtin judge (config search from measured time and hardware feedback) on a
# few bundled problems, every kernel through the sandboxed evaluator; then the hardware feedback
# on one solution (`kernelloop profile`), a small model made faster (capture -> optimize -> library
# -> apply), and a cheating candidate, rejected with a named reason.
# On a CPU the kernels run under the Triton interpreter: each is verified, and the search stops
# because nothing can be timed. On a GPU the same command times every config against eager
# PyTorch and torch.compile and keeps searching.
set -e
cd "$(dirname "$0")/.."
KL=.venv/bin/kernelloop
RUNS=${KERNELLOOP_DEMO_RUNS:-runs}
$KL doctor
echo
SIZE=""
UNTIMED=""
PROFILE_SET="--set N=2048"  # on a GPU: a quick evaluation before Nsight Compute
if ! .venv/bin/python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    SIZE="--size cpu"  # the problems' small CPU sizes: the interpreter runs every kernel
    PROFILE_SET=""     # the roofline at the problem's GPU size; the run is at its CPU size
    UNTIMED="--allow-untimed"  # nothing can be timed here: keep verified kernels, labelled so
fi
echo "== kernelloop optimize --coder builtin (no LLM): 7 bundled problems, ReLU to a transformer block"
# shellcheck disable=SC2086
$KL optimize level1/01_relu level1/05_softmax level1/07_layernorm level1/09_sum_dim \
    level1/14_matmul_square level2/01_linear_bias_gelu level3/02_transformer_block \
    --coder builtin --rounds 4 --candidates 2 $SIZE --run-dir "$RUNS"
RUN=$(ls -1t "$RUNS" | head -n 1)  # before the model path's own run below
$KL report "$RUN" --run-dir "$RUNS" --output "$RUNS/$RUN/report.html"
echo
echo "== hardware feedback on the matmul solution: registers, spills and shared memory for sm_90"
echo "   (compiled from the launches of a sandboxed run), the roofline on an H100, the Judge's view"
# shellcheck disable=SC2086
$KL profile level1/14_matmul_square kernelbench/problems/level1/solutions/14_matmul_square.py \
    $PROFILE_SET || echo "(profile: exit status $?)"
echo
echo "== your model, faster: capture a transformer block, optimize its hot module calls, patch it"
# The demo's own library, so the demo never adds entries to yours.
MODEL=examples/models/tiny_llama.py:make_block
export KERNELLOOP_LIBRARY="$RUNS/demo-library"
$KL capture $MODEL -o "$RUNS/demo-capture"
# shellcheck disable=SC2086
$KL optimize "$RUNS/demo-capture" --coder builtin --rounds 2 $UNTIMED --run-dir "$RUNS"
$KL library list
# shellcheck disable=SC2086
$KL apply $MODEL --capture "$RUNS/demo-capture" $UNTIMED
unset KERNELLOOP_LIBRARY
echo
echo "== a cheating candidate: calls torch.relu instead of launching its kernel"
$KL eval level1/01_relu examples/cheat_calls_torch.py || echo "(rejected, exit status $?: as it should be)"
echo
echo "The campaign's page, self-contained: $RUNS/$RUN/report.html"
echo "Live dashboards of every run:         $KL dashboard --run-dir $RUNS   (then open http://127.0.0.1:8765)"
