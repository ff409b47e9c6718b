# Every routine task. `make local` and `make test` also set everything up on a fresh machine.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: local test lint fmt bench e2e-kind clean lock

# First run: a minute or two of pip, so say what is happening; pip's own output goes to $(VENV)/install.log
# (shown when it fails) and a line every 5 s counts the packages it has fetched.
$(BIN)/.installed: pyproject.toml constraints.txt
	@echo "make: creating $(VENV) (first run, or pyproject.toml changed)"
	@$(PYTHON) -m venv $(VENV)
	@echo "make: installing Tollgate and its dependencies (Envoy, redis-server, localstripe, the SDKs: a minute or two)"
	@$(BIN)/pip install --disable-pip-version-check --progress-bar off -c constraints.txt -e '.[dev]' >$(VENV)/install.log 2>&1 & pid=$$!; \
	while kill -0 $$pid 2>/dev/null; do sleep 5; kill -0 $$pid 2>/dev/null || break; \
	  if grep -q '^Installing collected' $(VENV)/install.log; then echo "make:   … unpacking them"; \
	  else echo "make:   … $$(grep -c '^Collecting' $(VENV)/install.log) packages fetched"; fi; done; \
	if ! wait $$pid; then tail -n 30 $(VENV)/install.log; echo "make: pip failed; the whole log is $(VENV)/install.log"; exit 1; fi
	@echo "make: installed"
	@touch $@

## Pin every dependency (constraints.txt) to what the venv holds: after changing pyproject.toml's
## dependencies, run `make test`, then this.
lock: $(BIN)/.installed
	@{ sed -n '1,2p' constraints.txt; $(BIN)/pip freeze --exclude-editable --disable-pip-version-check; } > constraints.txt.new
	@mv constraints.txt.new constraints.txt
	@echo "make: constraints.txt pins $$(grep -c '==' constraints.txt) packages"

## Run a whole gateway on this machine (Redis, ext_authz, Envoy, and localstripe as Stripe) until Ctrl-C.
local: $(BIN)/.installed
	$(BIN)/tollgate local deploy/examples/local --localstripe

## Lint, type-check, then every test tier (unit, integration, e2e).
test: lint
	$(BIN)/pytest

## ruff, mypy (the packages, then bench/), import-linter (the layering contracts in pyproject.toml), hadolint on the Dockerfiles and
## actionlint on the workflows (both from PyPI wheels, which exist for Linux x86-64 only: elsewhere they
## are skipped with a note).
lint: $(BIN)/.installed
	$(BIN)/ruff check src extauthz operator tests bench
	$(BIN)/ruff format --check src extauthz operator tests bench
	$(BIN)/mypy
	$(BIN)/mypy bench
	$(BIN)/lint-imports --no-cache
	@if [ -x $(BIN)/hadolint ]; then $(BIN)/hadolint extauthz/Dockerfile deploy/kind/localstripe.Dockerfile && echo "hadolint: ok"; \
	else echo "hadolint: skipped (no wheel for this platform)"; fi
	@if [ -x $(BIN)/actionlint ]; then $(BIN)/actionlint .github/workflows/*.yml && echo "actionlint: ok"; \
	else echo "actionlint: skipped (no wheel for this platform)"; fi

fmt: $(BIN)/.installed
	$(BIN)/ruff format src extauthz operator tests bench
	$(BIN)/ruff check --fix src extauthz operator tests bench

## Added latency and checks/s of ext_authz through a real Envoy (prints figures; not a test).
bench: $(BIN)/.installed
	$(BIN)/python bench/latency.py

## The chart in a real kind cluster (needs Docker and kind; not part of `make test`): deploy/kind/e2e.sh.
e2e-kind: $(BIN)/.installed
	deploy/kind/e2e.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
