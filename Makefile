# Relay: two commands do all the set-up on a fresh machine.
#   make run   — create .venv, install, run the main job on the bundled data
#   make test  — create .venv if needed, install dev deps, run the test suite
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DATA   := data/ml-latest-small/ratings.csv
DB     ?= relay.duckdb

.PHONY: run test test-slow bench ntk-golden clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/relay ingest $(DATA) --dataset mls --db $(DB)
	$(BIN)/relay periods --dataset mls --policy equal-count:17 --db $(DB)

test: $(STAMP)
	$(BIN)/python -m pytest

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

clean:
	rm -rf $(VENV) relay.duckdb relay.duckdb.wal relay-storage .pytest_cache
