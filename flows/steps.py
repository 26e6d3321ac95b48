"""How the parent flow runs a model step: in its own process, or as a deployment on the GPU pool.

A step on the GPU pool can be submitted now and waited for later (:func:`submit_step`,
:func:`wait_for_step`), so independent steps (the summaries of every period to process) are on
the pool's workers together while the parent goes on. Either way the step only exchanges files
under the storage root, and the parent records its results in the catalog afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment
from prefect.runtime import flow_run
from pydantic_core import to_jsonable_python

from storage.arrays import content_key

POLL_SECONDS = 0.5
"""How often the parent asks the API whether a submitted step has finished."""


class StepFailed(RuntimeError):
    """A model step run on the GPU pool ended in another state than Completed."""


def submit_step(deployment: str, **params: Any) -> UUID:
    """Submit ``deployment`` with ``params`` to its work pool without waiting; returns the run's id.

    The idempotency key joins this flow run's id with the work's content key, so retrying the
    parent within one run never submits the same work twice, while a new run can redo failed work.
    """
    payload = to_jsonable_python(params)
    child = run_deployment(deployment, parameters=payload, idempotency_key=f"{flow_run.id}-{content_key(payload)}",
                           timeout=0)
    return child.id


def wait_for_step(run_id: UUID, deployment: str) -> None:
    """Wait until the run ``run_id`` is final; :class:`StepFailed` (with its message) unless it completed."""
    with get_client(sync_client=True) as client:
        while not ((run := client.read_flow_run(run_id)).state and run.state.is_final()):
            time.sleep(POLL_SECONDS)
    if not run.state.is_completed():
        raise StepFailed(f"{deployment} run {run.name!r} ended {run.state.name}: {run.state.message}")


def run_step(local_flow: Callable[..., Any], deployment: str, *, gpu_pool: str | None, **params: Any) -> None:
    """Run a model step to its end: ``local_flow`` in-process, or ``deployment`` on the GPU pool."""
    if gpu_pool is None:
        local_flow(**params)
    else:
        wait_for_step(submit_step(deployment, **params), deployment)
