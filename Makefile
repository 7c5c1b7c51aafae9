# cqrs_kit developer tasks.  `make help` lists the targets.
#
# Fresh-clone safe: needs only GNU make and Python >= 3.11.  The first target
# that needs tools creates .venv and installs `.[dev]` into it; the install is
# repeated only when pyproject.toml is newer than the .venv/.installed stamp.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# Extra arguments, e.g. `make tests PYTEST_ARGS="-k mediator -x"`.
PYTEST_ARGS ?=
BENCH_ARGS  ?=

# Every recipe line runs with `sh -e`: any failing command fails the target.
.SHELLFLAGS := -ec
.DELETE_ON_ERROR:
.DEFAULT_GOAL := help

.PHONY: help venv lint format types tests check test bench docs clean distclean

help:
	@echo "Targets:"
	@echo "  venv       create .venv (PYTHON=$(PYTHON), needs >= 3.11) and install .[dev]"
	@echo "  lint       ruff check + ruff format --check"
	@echo "  format     ruff format + ruff check --fix"
	@echo "  types      mypy (strict; config in pyproject.toml)"
	@echo "  tests      pytest -m 'not slow'   (extra args: PYTEST_ARGS=...)"
	@echo "  check      lint types tests"
	@echo "  test       venv + lint types tests (what CI runs via .ci/run)"
	@echo "  bench      read vs write model query benchmarks + report (BENCH_SIZES=..., BENCH_ARGS=...)"
	@echo "  docs       mkdocs build --strict into site/ (tests/docs/test_docs_build.py does it too)"
	@echo "  clean      remove caches and build artefacts (keeps .venv)"
	@echo "  distclean  clean + remove .venv"

# --------------------------------------------------------------------------
# Virtualenv
# --------------------------------------------------------------------------
$(BIN)/python:
	@if ! command -v $(PYTHON) >/dev/null 2>&1; then \
		echo "error: '$(PYTHON)' not found. Install Python >= 3.11 or run 'make PYTHON=/path/to/python3.11 ...'." >&2; \
		exit 1; \
	fi
	@if ! $(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then \
		version=$$($(PYTHON) -c 'import platform; print(platform.python_version())' 2>/dev/null || true); \
		echo "error: cqrs_kit needs Python >= 3.11, but '$(PYTHON)' is $${version:-not runnable}." >&2; \
		echo "       Run e.g. 'make PYTHON=python3.12 ...'." >&2; \
		exit 1; \
	fi
	@echo "creating $(VENV) with $$(command -v $(PYTHON))"
	@$(PYTHON) -m venv $(VENV) || { \
		rm -rf $(VENV); \
		echo "error: '$(PYTHON) -m venv' failed (on Debian/Ubuntu install the python3-venv package)." >&2; \
		exit 1; \
	}

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

# --------------------------------------------------------------------------
# Quality gates
# --------------------------------------------------------------------------
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

types: $(STAMP)
	$(BIN)/mypy

tests: $(STAMP)
	$(BIN)/pytest -q -m "not slow" $(PYTEST_ARGS)

check: lint types tests

# What CI runs (.ci/run): make sure the venv is current, then every gate.
test: $(STAMP) lint types tests

# --------------------------------------------------------------------------
# Benchmarks / docs
# --------------------------------------------------------------------------
# The main benchmark job: seed (or reuse, from benchmarks/results/data/) the
# benchmark dataset, run the read-model vs write-model query suite
# (benchmarks/test_queries.py) and write benchmarks/results/latest.{json,md,png}.
# Knobs: BENCH_SIZES=10000,100000,1000000, BENCH_POSTGRES_URL=..., BENCH_REPEAT,
# BENCH_ROUNDS (see benchmarks/report.py), or BENCH_ARGS="--sizes 10000".
# The other suites run with `.venv/bin/pytest benchmarks/<file> --benchmark-only`.
bench: $(STAMP)
	$(BIN)/python -m benchmarks.report $(BENCH_ARGS)

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# --------------------------------------------------------------------------
# Cleanup
# --------------------------------------------------------------------------
# Saved benchmark runs (.benchmarks/, benchmarks/results/) are data, not
# caches, so `clean` leaves them alone.
clean:
	rm -rf .mypy_cache .ruff_cache .pytest_cache .hypothesis build dist site *.egg-info
	find . -path ./$(VENV) -prune -o -path ./.git -prune -o -type d -name __pycache__ -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
