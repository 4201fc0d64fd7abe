# Everything installs from nothing: a Python 3.11+ interpreter is the only prerequisite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA_DIR ?= ./data

.PHONY: install system-deps bench-deps run test lint typecheck bench docs schemas clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test,dev]"
	touch $@

install: $(BIN)/.installed

# Debian packages the test suite uses: kcat (reads the topic as an analytics consumer
# would) and docker-compose (validates docker-compose.yml; no engine needed).
system-deps:
	@command -v kcat >/dev/null && command -v docker-compose >/dev/null || \
	  { if [ "$$(id -u)" = 0 ]; then apt-get update -qq && \
	      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat docker-compose >/dev/null; \
	    else echo "note: run as root (or install kcat, docker-compose) for the kcat and compose tests"; fi; }

run: install
	$(BIN)/ticketing serve --data-dir $(DATA_DIR)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check engine api cli
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy

test: install system-deps lint typecheck
	$(BIN)/pytest -q

# wrk (C) generates the HTTP load so the load generator takes little of the server's CPU;
# without it the HTTP benchmark falls back to a slower Python client and says so.
bench-deps:
	@command -v wrk >/dev/null || \
	  { if [ "$$(id -u)" = 0 ]; then apt-get update -qq && \
	      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; \
	    else echo "note: run as root (or install wrk) for the HTTP benchmark's load generator"; fi; }

bench: install bench-deps
	$(BIN)/python -m bench

docs: install
	$(BIN)/ticketing schemas
	$(BIN)/ticketing docs README.md

schemas: install
	$(BIN)/ticketing schemas

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
