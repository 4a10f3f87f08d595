#!/bin/sh
# `make demo`: what kernelloop can do today on any machine, no API key needed.
# Evaluates bundled known-good Triton kernels (accepted), a raw CUDA kernel, the hardware
# feedback a Judge would read, then a cheating candidate (rejected with a named reason). On a CPU the kernels run under the Triton interpreter and timing is
# skipped; on a GPU the same commands time them against eager PyTorch and torch.compile.
set -e
cd "$(dirname "$0")/.."
KL=.venv/bin/kernelloop
$KL doctor
for p in 01_relu 05_softmax 07_layernorm 14_matmul_square; do
    echo
    echo "== kernelloop eval level1/$p kernelbench/problems/level1/solutions/$p.py"
    $KL eval "level1/$p" "kernelbench/problems/level1/solutions/$p.py"
done
echo
echo "== a raw CUDA candidate: compiled with NVRTC here; it runs and is timed only on a GPU"
$KL eval level1/01_relu examples/relu_cuda.py || true
echo
echo "== hardware feedback without a GPU: compiler resources and the roofline at GPU size"
$KL profile level1/01_relu examples/relu_cuda.py
echo
echo "== a cheating candidate: calls torch.relu instead of launching its kernel"
$KL eval level1/01_relu examples/cheat_calls_torch.py || echo "(rejected, exit status $?: as it should be)"
