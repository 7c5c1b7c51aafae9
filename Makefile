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
	@echo "  bench      pytest-benchmark suite in benchmarks/ (extra args: BENCH_ARGS=...)"
	@echo "  docs       mkdocs build --strict (only if mkdocs.yml exists)"
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
# pytest exits 5 when nothing is collected; that is fine while benchmarks/ is
# still sparse.  Any other failure fails the target.
bench: $(STAMP)
	@if [ ! -d benchmarks ]; then echo "bench: no benchmarks/ directory, nothing to run"; exit 0; fi; \
	status=0; \
	$(BIN)/pytest benchmarks --benchmark-only --benchmark-columns=median,mean,ops $(BENCH_ARGS) || status=$$?; \
	if [ $$status -eq 5 ]; then echo "bench: no benchmarks collected under benchmarks/"; status=0; fi; \
	exit $$status

docs: $(STAMP)
	@if [ ! -f mkdocs.yml ]; then echo "docs: no mkdocs.yml yet, nothing to build"; exit 0; fi; \
	if [ ! -x $(BIN)/mkdocs ]; then \
		echo "error: mkdocs.yml exists but mkdocs is not installed in $(VENV); add it to the dev extras in pyproject.toml." >&2; \
		exit 1; \
	fi; \
	$(BIN)/mkdocs build --strict

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
