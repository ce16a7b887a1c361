# The front door. Every target installs what it needs, so a fresh clone needs only python3 and make.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
SAM_VENV := .venv-sam
BIN := $(VENV)/bin
PORT ?= 3000
export SAM_CLI_TELEMETRY := 0
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help install run test lint fmt typecheck template-lint unit build clean bench events

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(BIN)/.installed: requirements-dev.txt layers/common/requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	@touch $@

$(SAM_VENV)/bin/.installed: requirements-sam.txt
	@test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install -q --upgrade pip
	$(SAM_VENV)/bin/python -m pip install -q -r requirements-sam.txt
	@touch $@

install: $(BIN)/.installed $(SAM_VENV)/bin/.installed  ## create .venv (project) and .venv-sam (SAM CLI)

run: $(BIN)/.installed  ## start the whole bundle locally (moto server + webhook routes on PORT)
	$(BIN)/fanfare-sync local --port $(PORT)

lint: $(BIN)/.installed  ## ruff lint + format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: $(BIN)/.installed  ## apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: $(BIN)/.installed  ## mypy (strict) over the layer, the functions, the tooling and the scripts
	$(BIN)/mypy layers/common/fanfare_sync cli/fanfare_sync_cli scripts
	$(BIN)/mypy functions/shopify_webhook/app.py
	$(BIN)/mypy functions/woocommerce_webhook/app.py
	$(BIN)/mypy functions/complete_admission/app.py
	$(BIN)/mypy functions/stale_orders/app.py

template-lint: $(BIN)/.installed $(SAM_VENV)/bin/.installed  ## cfn-lint and sam validate --lint
	$(BIN)/cfn-lint template.yaml
	$(SAM_VENV)/bin/sam validate --lint --template template.yaml

unit: $(BIN)/.installed  ## tests only, no linters
	$(BIN)/pytest

test: $(BIN)/.installed $(SAM_VENV)/bin/.installed  ## everything CI runs: lint, types, template checks, all tests
	$(MAKE) --no-print-directory lint typecheck template-lint
	SAM_CLI=$(CURDIR)/$(SAM_VENV)/bin/sam $(BIN)/pytest

build: $(SAM_VENV)/bin/.installed  ## sam build without Docker (makefile build method, arm64 / python3.13)
	PATH="$(CURDIR)/$(SAM_VENV)/bin:$$PATH" sam build --template template.yaml

clean:  ## remove build output and virtualenvs
	rm -rf .aws-sam $(VENV) $(SAM_VENV) .pytest_cache .mypy_cache .ruff_cache

events: $(BIN)/.installed  ## regenerate the signed sample events in events/
	$(BIN)/python scripts/generate_events.py

bench: $(BIN)/.installed  ## benchmarks: ratios measured side by side; writes bench/results/ and the README table
	$(BIN)/python -m bench.run
