#!/usr/bin/env bash
# Start a process worker for the `gpu` pool (distill-period, train-period). Start one per GPU and
# pin it with CUDA_VISIBLE_DEVICES; the `gpu` tag concurrency limit keeps one GPU task running at
# a time. These runs never open the DuckDB catalog: they read and write files under the storage
# root, which must be the same path the parent flows use (a shared volume across machines).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFECT="${PREFECT:-$REPO/.venv/bin/prefect}"
exec "$PREFECT" worker start --pool gpu --type process ${WORKER_NAME:+--name "$WORKER_NAME"} "$@"
