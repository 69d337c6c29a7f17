# The README's two commands are `make demo` and `make test`; both install first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME := $(CURDIR)/.dagster_home
# torch goes in first, pinned. TORCH_SPEC is its pip arguments, chosen for this machine by
# diffusion_assets/torch_build.py: torch==$(TORCH_VERSION) where no NVIDIA driver is found (on our CPU
# machines a local CPU wheel; a looser spec pulls a CUDA build of several GB), else PyTorch's CUDA
# wheels that the driver runs (README: NVIDIA DGX Spark). Override: make install TORCH_SPEC='...'
TORCH_VERSION := 2.13.0
TORCH_SPEC ?= $(eval TORCH_SPEC := $(shell $(PYTHON) -m diffusion_assets.torch_build pip-args $(TORCH_VERSION)))$(TORCH_SPEC)

.PHONY: install demo test ui lint FORCE

# the torch choice is recorded, so a new one (an override, a driver installed since) reinstalls
$(VENV)/.torch-spec: FORCE
	$(if $(TORCH_SPEC),,$(error no torch build for this machine (the reason is above); pick one: make install TORCH_SPEC='torch==$(TORCH_VERSION)'))
	@mkdir -p $(VENV) && printf '%s\n' '$(TORCH_SPEC)' | cmp -s - $@ || printf '%s\n' '$(TORCH_SPEC)' > $@

$(VENV)/.installed: pyproject.toml $(VENV)/.torch-spec
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_SPEC)
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
