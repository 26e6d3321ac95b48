"""Retry policy shared by the I/O tasks: retry with backoff on I/O failures only.

Deterministic failures (a bad argument, a model error) fail at once: retrying them would only
delay the error. I/O failures (a locked catalog file, a dropped API connection) are retried.
"""

from __future__ import annotations

from typing import Any

import duckdb
import httpx
from prefect.cache_policies import NO_CACHE

TRANSIENT = (duckdb.IOException, httpx.TransportError, ConnectionError, TimeoutError)


def is_transient(exc: BaseException) -> bool:
    """True for failures worth retrying: lock/transport/timeout errors, not missing files."""
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
