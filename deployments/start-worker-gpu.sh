#!/usr/bin/env bash
# Start a process worker for the `gpu` pool (distill-periods, train-period). Start one per GPU, pin
# it with CUDA_VISIBLE_DEVICES=<i>, and set the `gpu` tag limit to the number of GPUs
# (`relay deploy --gpu-limit N`): it bounds how many model steps run at once. These runs never
# open the DuckDB catalog: they read and write files under the storage root, which must be the
# same path the parent flows use (a shared volume across machines).
#
# GPU support: the torch wheel sees CUDA GPUs as it is; JAX (Distill-CF) needs the optional extra,
# installed once into the virtualenv:
#     .venv/bin/pip install -e '.[gpu]'                    # jax[cuda12]
#     .venv/bin/python -c 'import jax; print(jax.devices())'   # should list CudaDevice(id=0)
# Runs use `device: auto` (the GPU when one is visible); a run asking for `cuda` where this worker
# sees none fails at once with DeviceUnavailable.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/prefect-env.sh"
exec "$PREFECT" worker start --pool gpu --type process ${WORKER_NAME:+--name "$WORKER_NAME"} "$@"
