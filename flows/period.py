"""Every step of one finished period: distill it, evaluate M_{t-1} on it, train M_t, record.

Order inside a period (docs/architecture.md §3): the summary S_t, then the previous period's
models on t (metrics), then each strategy's M_t. Each step is skipped when the catalog already
holds its result (unless ``force``), so a killed run picks up where it stopped. GPU steps run as
the ``distill-period``/``train-period`` deployments when ``gpu_pool`` is set, in-process
otherwise; either way they only exchange files, and this (parent) process records their results.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prefect import flow
from prefect.deployments import run_deployment
from prefect.runtime import flow_run
from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from flows.model_steps import distill_period, train_period
from flows.params import PeriodJob
from models.strategies import get_strategy
from storage.arrays import content_key
from storage.layout import meta_path
from tasks.catalog import (
    export_period_rows,
    export_train_inputs,
    find_model,
    read_done_work,
    record_model,
    record_summary,
)
from tasks.distill import summary_path
from tasks.evaluate import evaluate_model
from tasks.progress import artifact_key, set_progress, start_progress
from tasks.train import state_path

DISTILL_DEPLOYMENT = "distill-period/distill-period"
TRAIN_DEPLOYMENT = "train-period/train-period"


class PeriodOutcome(BaseModel):
    """What one period's run did: meta files of new summaries/models, evaluations made."""

    period: int
    summary_metas: list[str] = []
    train_metas: list[str] = []
    evaluated: list[str] = []


def _run_step(local_flow: Callable[..., str], deployment: str, *, gpu_pool: str | None, **params: Any) -> None:
    """Run a model step in-process, or as ``deployment`` on the GPU pool; raise if it failed.

    The idempotency key joins this flow run's id with the work's content key, so retrying the
    parent within one run never submits the same work twice, while a new run can redo failed work.
    """
    if gpu_pool is None:
        local_flow(**params)
        return
    payload = to_jsonable_python(params)
    child = run_deployment(
        deployment,
        parameters=payload,
        idempotency_key=f"{flow_run.id}-{content_key(payload)}",
        poll_interval=1,
        timeout=None,
    )
    if not child.state or not child.state.is_completed():
        raise RuntimeError(f"{deployment} run {child.id} ended {child.state and child.state.name}")


@flow(name="process-period", log_prints=True)
def process_period(job: PeriodJob, period: int) -> PeriodOutcome:
    """Distill period t, evaluate every M_{t-1}^s on it, train every M_t^s; record all of it."""
    done = read_done_work(job.db, dataset=job.dataset, periods=[max(period - 1, 0), period],
                          strategies=job.strategies)
    todo = done.todo(period, job.strategies, force=job.force, window=job.matrix_window)
    outcome = PeriodOutcome(period=period)
    if todo.distill:
        outcome.summary_metas.append(_distill(job, period))
    for strategy in todo.evaluate:
        outcome.evaluated += _evaluate(job, strategy, trained_through=period - 1, on=[period])
    if todo.train:
        outcome.train_metas += _train_all(job, period, list(todo.train))
    for strategy, earlier in todo.remember:
        outcome.evaluated += _evaluate(job, strategy, trained_through=period, on=list(earlier))
    return outcome


def _distill(job: PeriodJob, period: int) -> str:
    """Export period t's rows, distill them (GPU flow), record the summary; returns its meta."""
    rows = export_period_rows(job.db, job.storage_root, dataset=job.dataset, period=period)
    work = dict(storage_root=job.storage_root, dataset=job.dataset, period=period, rows_sha=rows.sha,
                distill=job.distill, seed=job.seed)
    _run_step(distill_period, DISTILL_DEPLOYMENT, gpu_pool=job.gpu_pool, **work, force=job.force)
    out = summary_path(**work)
    record_summary(job.db, dataset=job.dataset, period=period, summary_path=str(out))
    return str(meta_path(out))


def _evaluate(job: PeriodJob, strategy: str, *, trained_through: int, on: list[int]) -> list[str]:
    """Evaluate M_trained_through^strategy on the periods ``on`` (nothing when it was never trained)."""
    state = find_model(job.db, dataset=job.dataset, strategy=strategy, period=trained_through)
    if state is None:
        print(f"no M_{trained_through} for {strategy}: nothing to evaluate on periods {on}")
        return []
    evaluate_model(
        job.db, dataset=job.dataset, strategy=strategy, trained_through=trained_through, evaluated_on=on,
        state_path=state.path, run_id=str(flow_run.id), seed=job.seed,
    )
    return [f"{strategy}:{trained_through}->{j}" for j in on]


def _train_all(job: PeriodJob, period: int, todo: list[str]) -> list[str]:
    """Train each strategy of ``todo`` in order, moving the period's progress artifact."""
    bar = start_progress(artifact_key(job.dataset, "train-progress"), description=f"period {period}")
    metas = []
    for i, strategy in enumerate(todo):
        metas.append(_train(job, period, strategy))
        set_progress(
            bar, progress=100.0 * (i + 1) / len(todo),
            description=f"period {period}: trained {', '.join(todo[: i + 1])} of {len(todo)}",
        )
    return metas


def _train(job: PeriodJob, period: int, strategy: str) -> str:
    """Export the strategy's inputs, train M_t (GPU flow), register it; returns its meta."""
    inputs = export_train_inputs(job.db, job.storage_root, dataset=job.dataset, period=period, strategy=strategy)
    previous = None
    if period > 0 and get_strategy(strategy).warm_start:
        previous = find_model(job.db, dataset=job.dataset, strategy=strategy, period=period - 1)
    work = dict(storage_root=job.storage_root, dataset=job.dataset, period=period, strategy=strategy,
                inputs_sha=inputs.sha, previous_sha=previous and previous.sha, training=job.training, seed=job.seed)
    _run_step(train_period, TRAIN_DEPLOYMENT, gpu_pool=job.gpu_pool, **work, previous_path=previous and previous.path,
              force=job.force)
    out = state_path(**work)
    record_model(job.db, dataset=job.dataset, strategy=strategy, period=period, path=str(out))
    return str(meta_path(out))
