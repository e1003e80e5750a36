# `make report` and `make test` set up .venv on first use (CPU build of torch), then do their job.
# `make test` runs every test (as CI does); `make test-fast` leaves out those marked slow.
# `make docs` builds the documentation site into site/ (warnings are errors).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Extra pip arguments for torch, e.g. TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
# on a machine where PyPI's torch would be the CUDA build (Linux x86_64).
TORCH_PIP_ARGS ?=

.PHONY: report test test-fast lint docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0 $(TORCH_PIP_ARGS)
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

report: $(STAMP)
	$(BIN)/cnnarch report

test: $(STAMP) lint
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) report site .pytest_cache .ruff_cache
