# Relay: two commands do all the set-up on a fresh machine.
#   make run   — create .venv, install, run the main job on the bundled data
#   make test  — create .venv if needed, install dev deps, run the test suite
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DATA   := data/ml-latest-small/ratings.csv
DB     ?= relay.duckdb
# No telemetry from the temporary Prefect servers (there is no internet here anyway).
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
# A temporary server on a fresh PREFECT_HOME migrates its database first: 19.5 s on 2 cores,
# against Prefect's 20 s start-up limit.
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 120

.PHONY: run test test-slow bench ntk-golden clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/relay ingest $(DATA) --dataset mls --db $(DB)
	$(BIN)/relay periods --dataset mls --policy equal-count:17 --db $(DB)
	$(BIN)/relay run --dataset mls --db $(DB)

test: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

# neural-tangents is the NTK oracle; it needs jax 0.5.3 + TensorFlow, so it lives in its own venv.
NTK_VENV := .venv-ntk
$(NTK_VENV)/.installed:
	test -x $(NTK_VENV)/bin/python || $(PYTHON) -m venv $(NTK_VENV)
	$(NTK_VENV)/bin/pip install --quiet --upgrade pip
	$(NTK_VENV)/bin/pip install --quiet neural-tangents==0.6.5 jax==0.5.3 jaxlib==0.5.3 tf2jax==0.3.7 tensorflow==2.21.0
	touch $@

ntk-golden: $(NTK_VENV)/.installed
	$(NTK_VENV)/bin/python scripts/ntk_golden.py --out tests/fixtures/ntk_golden.npz

clean:
	rm -rf $(VENV) relay.duckdb relay.duckdb.wal relay-storage .pytest_cache
