# Hysbys: the two commands a new council needs are `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test test-reliability test-unit test-integration test-faults lint bench clean deps-browser

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)  ## the embedded platform, all in one process, with a demo tenant
	$(BIN)/hysbys up --demo

deps-browser:  ## Debian's Chromium and its driver, for the /ops page's browser test
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium chromium-driver; }

test: $(STAMP) deps-browser  ## the whole suite: unit, contract, integration (real RabbitMQ + PostgreSQL), end to end
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-reliability: $(STAMP)  ## fault, security and fuzz suites (issue 8; not yet part of make test)
	HYSBYS_RELIABILITY=1 $(BIN)/python -m pytest tests/faults tests/security tests/fuzz $(PYTEST_ARGS)

test-unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

test-integration: $(STAMP)
	$(BIN)/python -m pytest -m integration $(PYTEST_ARGS)

BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)  ## benchmarks on RabbitMQ + PostgreSQL; results in bench/results/, docs/benchmarks.md
	$(BIN)/hysbys bench $(SCENARIOS)
	$(BIN)/python -m bench.report

lint: $(STAMP)
	$(BIN)/ruff check shared services tests

clean:
	rm -rf var .pytest_cache build *.egg-info
