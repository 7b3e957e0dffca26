# The two commands: `make run` (the demo on the embedded default) and `make test`.
# Both bootstrap .venv on first use and reuse it (and the service caches) after.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.installed-demo
SERVICES := deploy/services.sh

.PHONY: run test test-fast services services-stop lint format venv clean-services

$(STAMP): pyproject.toml setup.py sdk/_hotpath.c sdk/_transpose.c collector/_pgcopy.c collector/_columnar.c
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# `make run` needs only the SDK, the platform and torch: not the test tools.
$(DEMO_STAMP): pyproject.toml setup.py sdk/_hotpath.c sdk/_transpose.c collector/_pgcopy.c collector/_columnar.c
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -e '.[demo]'
	@touch $(DEMO_STAMP)

venv: $(STAMP)

## run: the embedded platform and the demo against it (Ctrl-C stops it)
run: $(DEMO_STAMP)
	$(BIN)/inferloop demo

## test: start real Kafka and PostgreSQL, run the whole suite, stop them again
test: $(STAMP)
	@bash deploy/run-tests.sh

## test-fast: the inner loop, under a minute: no Kafka, nothing marked slow, store tests on
## SQLite only (make test runs each on PostgreSQL too)
test-fast: $(STAMP)
	@INFERLOOP_TEST_SERVICES=postgres bash deploy/run-tests.sh -q -n 2 -m "not kafka and not slow" -k "not postgresql"

services: $(STAMP)
	@bash $(SERVICES) start all

services-stop:
	@bash $(SERVICES) stop all

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
