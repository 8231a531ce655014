# Two commands on a fresh machine:  `make run`  and  `make test`.
# Both create .venv, install what they need (idempotent: stamps skip work already done).

PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
PIP     = $(PY) -m pip
# pytest arguments for `make test` (e.g. make test PYTEST_ARGS="-k survival")
PYTEST_ARGS ?=

.PHONY: run test setup setup-dev lint bench doctor rebuild-llama rebuild-llama-server clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# torch is pinned first so the CPU build on local disk is taken (a newer one would be a CUDA build)
# llama-cpp-python is built by scripts/build-llama.sh with AMX off into a wheel folder keyed by
# version, flags and CPU, never through pip's cache (which ignores build flags)
$(VENV)/.stamp-all: pyproject.toml scripts/build-llama.sh | $(VENV)/bin/python
	$(PIP) install -q "torch==2.13.0"
	scripts/build-llama.sh $(PY)
	$(PIP) install -q -e ".[all]"
	touch $@

$(VENV)/.stamp-dev: pyproject.toml $(VENV)/.stamp-all
	$(PIP) install -q -e ".[dev]"
	touch $@

# llama.cpp's own llama-server (and llama-bench, llama-batched-bench) for the server tests and `lmread bench`:
# built once per host with AMX off into a cache folder keyed by version, flags and CPU (10-15 min on
# 2 cores the first time); the folder is written to $(VENV)/llama-server.path for the test fixtures
$(VENV)/llama-server.path: scripts/build-llama-server.sh | $(VENV)/bin/python
	scripts/build-llama-server.sh $(PYTHON) > $@.tmp
	mv $@.tmp $@

setup: $(VENV)/.stamp-all
setup-dev: $(VENV)/.stamp-dev $(VENV)/llama-server.path

## Set up and open lmread on the default study with the bundled models
run: setup
	$(VENV)/bin/lmread

## Rebuild llama-cpp-python from source for this host (AMX off) and reinstall it
rebuild-llama: | $(VENV)/bin/python
	REBUILD=1 scripts/build-llama.sh $(PY)

## Rebuild llama-server / llama-bench / llama-batched-bench from source for this host (AMX off)
rebuild-llama-server: | $(VENV)/bin/python
	REBUILD=1 scripts/build-llama-server.sh $(PYTHON) > $(VENV)/llama-server.path.tmp
	mv $(VENV)/llama-server.path.tmp $(VENV)/llama-server.path

## Check that every backend loads, prefills, generates and scores on this machine
doctor: setup
	$(VENV)/bin/lmread doctor

## Set up with the dev extra and run the whole test suite (lmread doctor first: a broken build fails fast)
# doctor runs on the tests' data folder, so the GGUF conversions it caches serve the tests too
TEST_HOME = $(CURDIR)/.lmread-test-home
test: setup-dev
	LMREAD_HOME=$(TEST_HOME) LMREAD_CONFIG=$(TEST_HOME)/no-config.toml $(VENV)/bin/lmread doctor
	$(VENV)/bin/ruff check lmread tests
	$(VENV)/bin/mypy lmread
	LMREAD_NO_SKIP=1 $(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

lint: setup-dev
	$(VENV)/bin/ruff check lmread tests

bench: setup
	$(VENV)/bin/lmread bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
