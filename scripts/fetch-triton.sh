#!/bin/sh
# Another Triton beside the project's, for the sm_90 compile check only (never imported by the
# project itself): the GPU machine's version, whose compiler may refuse what CI's accepts.
#   scripts/fetch-triton.sh 3.6.0      # -> .triton/3.6.0
#   KERNELLOOP_COMPILE_TRITON=.triton/3.6.0 .venv/bin/python -m pytest tests/test_compile_sm90.py
set -e
VERSION=${1:?usage: scripts/fetch-triton.sh VERSION, e.g. 3.6.0 as on the H100 image}
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
DEST=.triton/$VERSION
rm -rf "$DEST" && mkdir -p "$DEST"
"$PY" -m pip install -q --no-deps --target "$DEST" "triton==$VERSION"
"$PY" -c "import sys; sys.path.insert(0, '$DEST'); import triton; print('triton', triton.__version__, 'in $DEST')"
