# Quickstart targets. Everything installs into ./.venv; nothing touches the system Python.
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint gpu-check clean

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

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
