"""The continual flow: ingest new logs, close periods, process finished periods in order.

Scheduled, it processes every finished period whose work is not recorded yet. Given a period
range (``start``/``end``), it is Relay's backfill: those periods, in order, skipping recorded work
unless ``force`` (Prefect has no built-in backfill; the ``backfill`` deployment is this flow).
"""

from __future__ import annotations

from prefect import flow

from flows.ingest import ingest_flow
from flows.params import (DEFAULT_DB, DEFAULT_STORAGE_ROOT, CatalogPath, DatasetName, GpuPool, MatrixWindow,
                          PeriodJob, Seed, StorageRoot, StrategyNames, all_strategies)
from flows.model_steps import check_devices
from flows.period import PeriodOutcome, process_period, submit_summaries
from flows.publish import publish_reports
from models.configs import DistillConfig, TrainingConfig
from tasks.catalog import read_done_work
from tasks.progress import RunPlan, announce


@flow(name="continual", log_prints=True)
def continual_flow(
    dataset: DatasetName,
    data: list[str] | None = None,
    policy: str | None = None,
    reset: bool = False,
    start: int | None = None,
    end: int | None = None,
    force: bool = False,
    strategies: StrategyNames | None = None,
    distill: DistillConfig = DistillConfig(),
    training: TrainingConfig = TrainingConfig(),
    seed: Seed = 0,
    matrix_window: MatrixWindow = 16,
    db: CatalogPath = DEFAULT_DB,
    storage_root: StorageRoot = DEFAULT_STORAGE_ROOT,
    gpu_pool: GpuPool = None,
) -> list[PeriodOutcome]:
    """Ingest, cut periods, then for each period to process, in order: distill it, evaluate the
    previous models on it, train every strategy; publish the reports. On the GPU pool the
    summaries of all those periods are distilled at once, ahead of the training.

    Args:
        dataset: the dataset to keep fresh.
        data: files or folders with new logs (already ingested files are skipped).
        policy: period policy, 'equal-count:N' or 'calendar:day|week|month[,grace=2d]'; empty
            keeps the dataset's current one.
        reset: allow a policy change that drops finished periods and their results.
        start: first period to (re)process; empty: every finished period whose work is missing.
        end: last period to (re)process; empty: the last finished one.
        force: redo work that is already recorded (and bypass the model cache).
        strategies: strategies to train; empty: every registered one.
        distill: Distill-CF settings of every period's summary.
        training: how every strategy trains each period.
        seed: seed of every random step.
        matrix_window: M_t is also evaluated on this many periods up to t (the forgetting matrix).
        db: the DuckDB catalog file.
        storage_root: folder of inputs, summaries and model states (shared with GPU workers).
        gpu_pool: run the model steps as deployments on this work pool; empty: in this process.
    """
    strategies = strategies or all_strategies()
    if gpu_pool is None:
        check_devices(distill=distill, training=training)  # on the GPU pool, each model step checks its own
    finished = ingest_flow(dataset=dataset, data=data, policy=policy, reset=reset, db=db)
    done = read_done_work(db, dataset=dataset, periods=finished, strategies=strategies)
    if start is None and end is None:
        todo = [p for p in finished if done.todo(p, strategies, force=force, window=matrix_window)]
    else:
        todo = _period_range(dataset, finished, start=start, end=end)
    print(f"{len(finished)} finished periods, {len(todo)} to process: {todo}")
    announce(RunPlan(tuple(todo)))
    job = PeriodJob(dataset=dataset, strategies=strategies, force=force, distill=distill, training=training,
                    seed=seed, matrix_window=matrix_window, db=db, storage_root=storage_root, gpu_pool=gpu_pool)
    summaries = submit_summaries(job, [p for p in todo if done.todo(p, strategies, force=force).distill])
    outcomes = [process_period(job, p, summary=summaries.get(p)) for p in todo]
    publish_reports(job, outcomes)
    return outcomes


def _period_range(dataset: str, finished: list[int], *, start: int | None, end: int | None) -> list[int]:
    """``start..end`` (defaults: 0 and the last finished period), every one of them finished."""
    if not finished:
        raise ValueError(f"dataset {dataset!r} has no finished period")
    first, last = start or 0, finished[-1] if end is None else end
    if not 0 <= first <= last:
        raise ValueError(f"need 0 <= start <= end, got start={first}, end={last}")
    missing = sorted(set(range(first, last + 1)) - set(finished))
    if missing:
        raise ValueError(f"periods {missing} of {dataset!r} are not finished (or unknown)")
    return list(range(first, last + 1))
