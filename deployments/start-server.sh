#!/usr/bin/env bash
# Start the local Prefect server for Relay (UI at http://127.0.0.1:4200; arguments go to
# `prefect server start`, e.g. --host 0.0.0.0 --port 4200).
# A model task that finds every `gpu` slot taken asks again after at most 1 s (Prefect's default
# cap is 10 s, during which the GPU may sit idle).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/prefect-env.sh"
export PREFECT_SERVER_TASKS_TAG_CONCURRENCY_SLOT_WAIT_SECONDS="${PREFECT_SERVER_TASKS_TAG_CONCURRENCY_SLOT_WAIT_SECONDS:-1}"
exec "$PREFECT" server start "$@"
