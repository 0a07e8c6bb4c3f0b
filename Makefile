# The two commands: `make serve` and `make test`. Each creates .venv when needed and
# reinstalls only when pyproject.toml changed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch first, pinned to the CPU wheel the build machines carry (a bare `torch` pulls CUDA).
TORCH_SPEC ?= torch==2.13.0
# setuptools' build warns on every editable install that top-level folders shadow the package
# ("be careful with folders in your working directory"): true of every checkout, so hushed.
QUIET_BUILD := PYTHONWARNINGS=ignore

.PHONY: serve test check lint

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.stamp-base: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(QUIET_BUILD) $(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.stamp-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(QUIET_BUILD) $(BIN)/pip install --quiet -e '.[dev]'
	touch $(VENV)/.stamp-base $@

serve: $(VENV)/.stamp-base
	$(BIN)/stylewatch serve

test: $(VENV)/.stamp-dev
	$(BIN)/python -m pytest

lint: $(VENV)/.stamp-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

check: lint test
