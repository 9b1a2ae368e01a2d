# Hysbys: the two commands a new council needs are `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test test-unit test-integration test-faults audit lint typecheck bench clean deps-browser deps-tools lock console-assets

# The versions come from the lock files (pip-compile, from pyproject.toml's ranges):
# the venv here, CI's and the Docker image install the same ones.  `make lock`
# refreshes them after a change to pyproject.toml.
$(STAMP): pyproject.toml requirements.lock requirements-dev.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

lock: $(STAMP)  ## re-pin requirements.lock (the image) and requirements-dev.lock (make, CI) from pyproject.toml
	$(BIN)/pip-compile --quiet --upgrade --strip-extras --allow-unsafe --no-emit-index-url \
		--no-emit-find-links --no-emit-trusted-host -o requirements.lock pyproject.toml
	$(BIN)/pip-compile --quiet --upgrade --strip-extras --allow-unsafe --no-emit-index-url \
		--no-emit-find-links --no-emit-trusted-host --extra dev -o requirements-dev.lock pyproject.toml

run: $(STAMP) console-assets  ## the embedded platform, all in one process, with a demo tenant
	$(BIN)/hysbys up --demo

deps-browser:  ## Debian's Chromium and its driver, for the /ops page's browser test
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium chromium-driver; }

# promtool (Debian's prometheus package; its service is not started) checks the alert
# rules; kubectl renders the Kubernetes overlays (Debian's kubernetes-client when no
# kubectl is installed).  tests/unit/test_deploy_files.py fails without them.
deps-tools:  ## promtool and kubectl, for the deploy/ checks in make test
	@command -v promtool >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends prometheus; }
	@command -v kubectl >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends kubernetes-client; }

# `slow` marks the fault runs (tests/faults): they stop the local RabbitMQ and restart
# PostgreSQL, so they run on their own, in `make test-faults`.
test: $(STAMP) deps-browser deps-tools console-assets  ## everything but the fault runs: unit, contract, integration (real RabbitMQ + PostgreSQL), end to end, security, fuzz
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

test-faults: $(STAMP)  ## broker, database, kills, providers, poison, disk, counted (~10-13 min; root; breaks the shared broker, so alone)
	$(BIN)/python -m pytest tests/faults -m slow $(PYTEST_ARGS)

# Both run even if the first fails.  No --strict: see docs/reliability.md "Audits".
audit: $(STAMP)  ## known vulnerabilities in the dependencies (pip-audit); bandit over our code
	status=0; \
	$(BIN)/pip-audit --progress-spinner off || status=$$?; \
	$(BIN)/bandit -c pyproject.toml -r shared services -q || status=$$?; \
	exit $$status

test-unit: $(STAMP) deps-tools
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

test-integration: $(STAMP)  ## what needs RabbitMQ and PostgreSQL, but not the fault runs
	$(BIN)/python -m pytest -m "integration and not slow" $(PYTEST_ARGS)

BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -c requirements-dev.lock -e '.[dev,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)  ## benchmarks on RabbitMQ + PostgreSQL; results in bench/results/, docs/benchmarks.md
	$(BIN)/hysbys bench $(SCENARIOS)
	$(BIN)/python -m bench.report

# The console's front end (services/notify/console): GOV.UK Frontend's Sass compiled with
# our settings, its JS and images, axe-core for the browser tests (npm, pinned by
# frontend/package-lock.json), and the gettext catalogues compiled to .mo.  Rebuilt only
# when an input changes; the outputs are not committed.
CONSOLE      := services/notify/console
CONSOLE_OUT  := $(CONSOLE)/static/build

frontend/node_modules/.installed: frontend/package.json frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(CONSOLE_OUT)/console.css: frontend/node_modules/.installed frontend/console.scss $(wildcard frontend/_*.scss)
	mkdir -p $(CONSOLE_OUT)
	cd frontend && npx sass --pkg-importer=node --style=compressed --quiet-deps --no-source-map console.scss ../$(CONSOLE_OUT)/console.css
	cp frontend/node_modules/govuk-frontend/dist/govuk/govuk-frontend.min.js $(CONSOLE_OUT)/
	cp -r frontend/node_modules/govuk-frontend/dist/govuk/assets/images $(CONSOLE_OUT)/
	cp frontend/node_modules/govuk-frontend/dist/govuk/assets/manifest.json $(CONSOLE_OUT)/

console-assets: $(STAMP) $(CONSOLE_OUT)/console.css  ## the console's CSS, JS and compiled Welsh catalogues
	$(BIN)/python -m services.notify.console.catalogues compile

lint: $(STAMP)
	$(BIN)/ruff check shared services tests

# mypy on the kernel only for now (pyproject.toml [tool.mypy]; docs/decisions.md); make test
# runs the same through tests/unit/test_typecheck.py.
typecheck: $(STAMP)  ## mypy on shared/ (the kernel)
	$(BIN)/python -m mypy

clean:
	rm -rf var .pytest_cache .mypy_cache build *.egg-info
