#!/usr/bin/env bash
# Start a process worker for the `cpu` pool (parent flows: continual, backfill).
# Run from anywhere; PREFECT_API_URL must point at the server (e.g. http://127.0.0.1:4200/api).
# RELAY_DB / RELAY_STORAGE_ROOT are inherited by the flow runs this worker starts.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/prefect-env.sh"
exec "$PREFECT" worker start --pool cpu --type process ${WORKER_NAME:+--name "$WORKER_NAME"} "$@"
