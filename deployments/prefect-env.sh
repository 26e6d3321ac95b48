# Sourced by the start-*.sh scripts: which `prefect` to run and the settings Relay's pools want.
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFECT="${PREFECT:-$REPO/.venv/bin/prefect}"
# A worker looks for new runs every 3 s. Prefect's default, 10 s, is paid by every model step the
# parent hands to the pool; 1 s made the SQLite-backed local server stall for 60 s at a time
# (its worker-poll bookkeeping waits out the busy timeout), 3 s did not (bench/orchestration.py).
export PREFECT_WORKER_QUERY_SECONDS="${PREFECT_WORKER_QUERY_SECONDS:-3}"
