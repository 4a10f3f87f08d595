# Quickstart targets. Everything installs into ./.venv; nothing touches the system Python.
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint gpu-check compile-check clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements/ci-constraints.txt scripts/install-system-deps.sh
	./scripts/install-system-deps.sh
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c requirements/ci-constraints.txt torch
	$(PY) -m pip install -q -c requirements/ci-constraints.txt -e '.[dev,agents,dashboard,cluster]'
	touch $(STAMP)

demo: install
	./scripts/demo.sh

test: install
	$(PY) -m ruff check .
	$(PY) -m pytest -q

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

gpu-check: install
	./scripts/gpu_check.sh benchmarks/results

# Every shipped and generated Triton launch compiled for sm_90 by CI's Triton and by another
# version (the GPU machine's: 3.6.0 on the H100 image), before a device lease is spent on it.
TRITON ?= 3.6.0
compile-check: install
	./scripts/fetch-triton.sh $(TRITON)
	KERNELLOOP_COMPILE_TRITON=.triton/$(TRITON) $(PY) -m pytest -q tests/test_compile_sm90.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
