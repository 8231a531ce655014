# Two commands on a fresh machine:  `make run`  and  `make test`.
# Both create .venv, install what they need (idempotent: stamps skip work already done).

PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
PIP     = $(PY) -m pip
# pytest arguments for `make test` (e.g. make test PYTEST_ARGS="-k survival")
PYTEST_ARGS ?=

.PHONY: run test setup setup-dev lint bench clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# torch is pinned first so the CPU build on local disk is taken (a newer one would be a CUDA build)
$(VENV)/.stamp-all: pyproject.toml | $(VENV)/bin/python
	$(PIP) install -q "torch==2.13.0"
	$(PIP) install -q -e ".[all]"
	touch $@

$(VENV)/.stamp-dev: pyproject.toml $(VENV)/.stamp-all
	$(PIP) install -q -e ".[dev]"
	touch $@

setup: $(VENV)/.stamp-all
setup-dev: $(VENV)/.stamp-dev

## Set up and open lmread on the default study with the bundled models
run: setup
	$(VENV)/bin/lmread

## Set up with the dev extra and run the whole test suite
test: setup-dev
	$(VENV)/bin/ruff check lmread tests
	LMREAD_NO_SKIP=1 $(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

lint: setup-dev
	$(VENV)/bin/ruff check lmread tests

bench: setup
	$(VENV)/bin/lmread bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
