#!/bin/sh
# Wheels the GPU machine lacks (it has Python 3.12, torch and triton, but not langgraph), for
# scripts/gpu_check.sh's builtin-coder stage, which installs whatever lies in .whl/.
#   echo /.whl/ >> .git/info/exclude; scripts/fetch-gpu-wheels.sh      # then carry .whl
set -e
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
rm -rf .whl && mkdir .whl
"$PY" -m pip download -q --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform any \
    -c requirements/ci-constraints.txt -d .whl langgraph langgraph-checkpoint-sqlite
# What every torch image already has: shadowing it from PYTHONPATH could only break torch.
for name in typing_extensions packaging urllib3 requests certifi idna charset_normalizer \
        anyio h11 httpcore httpx pyyaml xxhash; do
    rm -f .whl/"$name"-*.whl
done
ls .whl | wc -l | xargs echo "wheels in .whl:"
du -sh .whl
