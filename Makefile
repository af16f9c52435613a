# The two commands of the README do all set-up: a virtual environment with mmpkg and its
# development tools. System tools (dpkg-deb, rpmbuild, lintian, ...) come from .ci/run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

demo: $(STAMP)
	$(BIN)/python tests/demo.py

test: lint
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check mmpkg tests
	$(BIN)/ruff format --check mmpkg tests
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix mmpkg tests
	$(BIN)/ruff format mmpkg tests

clean:
	rm -rf $(VENV) dist demo .mypy_cache .ruff_cache .pytest_cache
