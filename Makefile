# The front door. Every target installs what it needs, so a fresh clone needs only python3 and make.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
SAM_VENV := .venv-sam
CHECKOV_VENV := .venv-checkov
BIN := $(VENV)/bin
PORT ?= 3000
# make deploy ENV=prod: a samconfig.toml environment (staging is its `default`).
ENV ?= staging
export SAM_CLI_TELEMETRY := 0
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help install run test lint fmt typecheck template-lint unit build deploy clean bench events fuzz reliability-report

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

$(CHECKOV_VENV)/bin/.installed: requirements-checkov.txt
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install -q --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install -q -r requirements-checkov.txt
	@touch $@

TOOLS := $(BIN)/.installed $(SAM_VENV)/bin/.installed $(CHECKOV_VENV)/bin/.installed

install: $(TOOLS)  ## create .venv (project), .venv-sam (SAM CLI) and .venv-checkov (IaC scanner)

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

test: $(TOOLS)  ## everything CI runs: lint, types, template checks, checkov, all tests
	$(MAKE) --no-print-directory lint typecheck template-lint
	SAM_CLI=$(CURDIR)/$(SAM_VENV)/bin/sam CHECKOV=$(CURDIR)/$(CHECKOV_VENV)/bin/checkov \
		$(BIN)/pytest -n 2 --dist loadfile

build: $(SAM_VENV)/bin/.installed  ## sam build without Docker (makefile build method, arm64 / python3.13)
	PATH="$(CURDIR)/$(SAM_VENV)/bin:$$PATH" sam build --template template.yaml

deploy: $(BIN)/.installed $(SAM_VENV)/bin/.installed  ## sam build + sam deploy (ENV=staging|prod, DRY_RUN=1 prints the commands, YES=1 skips the change-set prompt)
	@$(BIN)/python scripts/deploy.py --env "$(ENV)" --sam $(SAM_VENV)/bin/sam $(if $(DRY_RUN),--dry-run) $(if $(YES),--yes)

fuzz: $(BIN)/.installed  ## fuzz both webhook handlers with 100,000 mutated inputs (COUNT=..., SEED=...)
	$(BIN)/python -m tests.fuzz.fuzz_webhooks --count $(or $(COUNT),100000) $(if $(SEED),--seed $(SEED))

reliability-report: $(BIN)/.installed  ## rerun the reliability suite and write its table into README.md
	UPDATE_README=1 $(BIN)/pytest tests/reliability -q

clean:  ## remove build output and virtualenvs
	rm -rf .aws-sam $(VENV) $(SAM_VENV) $(CHECKOV_VENV) .pytest_cache .mypy_cache .ruff_cache

events: $(BIN)/.installed  ## regenerate the signed sample events in events/
	$(BIN)/python scripts/generate_events.py

bench: $(BIN)/.installed  ## benchmarks: ratios measured side by side; writes bench/results/ and the README table
	$(BIN)/python -m bench.run
