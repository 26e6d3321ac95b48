"""Task policies: retries with backoff on I/O failures only; the model tasks' cache key.

Deterministic failures (a bad argument, a model error) fail at once: retrying them would only
delay the error. I/O failures (a locked catalog file, a dropped API connection) are retried.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx
from prefect.cache_policies import INPUTS, NO_CACHE, TASK_SOURCE, CacheKeyFnPolicy

import models

TRANSIENT = (httpx.TransportError, ConnectionError, TimeoutError)


def is_transient(exc: BaseException) -> bool:
    """True for failures worth retrying: lock/transport/timeout errors, not missing files.

    A catalog locked by another process raises ``storage.errors.CatalogBusyError``, a
    ``ConnectionError``.
    """
    if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError)):
        return False
    return isinstance(exc, TRANSIENT) or type(exc) is OSError


def retry_on_io(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry only when the failure is transient I/O."""
    try:
        state.result()
    except Exception as exc:  # noqa: BLE001 - inspecting the task's own failure
        return is_transient(exc)
    return False


IO_TASK = {
    "retries": 3,
    "retry_delay_seconds": [1, 4, 16],
    "retry_condition_fn": retry_on_io,
    "cache_policy": NO_CACHE,
}
"""Task options of catalog and API tasks: uncached, 3 retries with backoff on transient I/O."""


def models_code_digest() -> str:
    """SHA-256 over the source of every ``models/*.py`` (sorted by name).

    TASK_SOURCE hashes only the task's own body; a model task's result also depends on the model
    code it calls, so that code's digest is part of the model tasks' cache key.
    """
    digest = hashlib.sha256()
    for path in sorted(Path(models.__file__).parent.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


MODELS_CODE = models_code_digest()


def _models_code_key(task_ctx: Any, inputs: dict[str, Any]) -> str:
    return MODELS_CODE


MODEL_CACHE = (INPUTS - "force") + TASK_SOURCE + CacheKeyFnPolicy(cache_key_fn=_models_code_key)
"""Cache policy of the model tasks (distill, train): their inputs (storage root, dataset, period,
content SHA-256 of the input files, configs, seed; not the ``force`` flag), their source, and the
model code's digest; never arrays. Their persisted results are JSON (a file path), never pickle:
a result store anyone can write to cannot make a worker run code. The caller content-addresses the output path, so a cache hit
always points at the file that run wrote. Model work is deterministic given its seed, so these
tasks have no retries (a failure is a bug, not weather); their tag ``gpu`` puts them under the
``gpu`` tag concurrency limit (one per GPU)."""
