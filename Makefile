# The README's two commands are `make demo` and `make test`; both install first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME := $(CURDIR)/.dagster_home

.PHONY: install demo test ui lint

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, pinned: on our CPU machines this is a local CPU wheel (a looser spec pulls CUDA)
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

demo: install  ## generate the demo catalog end to end on CPU, recorded in the project's Dagster instance
	$(BIN)/diffusion-assets demo

test: install  ## the whole suite (CPU only, no downloads)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

ui: install  ## the Dagster UI on http://127.0.0.1:3000
	$(BIN)/dagster dev -w workspace.yaml

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .
