"""The model steps as flows of their own, deployable to the ``gpu`` pool.

``distill-periods`` distills the periods it is given, one after the other, in one run (summaries
depend on their own period only, and each run pays a process start and the server's bookkeeping:
six runs started at once made the local server stall for a minute); ``train-period`` trains every
strategy of one period, in
parallel (each strategy is a ``train-strategy`` task submitted to the flow's task runner; their
``gpu`` tag and its concurrency limit bound how many run at once). They read and write files
under the storage root only (their names come from ``storage.layout``), never open the catalog,
and return their result files' paths; the parent (``flows.period``) records them afterwards. A
cached result whose file is gone is computed again. Each checks first that the device its
configuration asks for is there, so a missing GPU fails the run at once.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow
from prefect.futures import wait
from pydantic import BaseModel, ConfigDict

from flows.params import DatasetName, Seed, StorageRoot
from models.configs import DistillConfig, TrainingConfig
from models.device import jax_device, torch_device
from tasks.distill import distill_summary, summary_path
from tasks.train import state_path, train_model


class PeriodRows(BaseModel):
    """A period whose rows the parent exported, and the SHA-256 of that file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    period: int
    rows_sha: str


class StrategyWork(BaseModel):
    """What one strategy trains on at a period: its exported inputs and its previous state."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    strategy: str
    inputs_sha: str
    previous_path: str | None = None
    previous_sha: str | None = None


def check_devices(*, distill: DistillConfig | None = None, training: TrainingConfig | None = None) -> None:
    """Raise ``models.device.DeviceUnavailable`` when a configuration asks for a device (``cuda``)
    this process cannot see; ``auto`` and ``cpu`` always pass."""
    if distill is not None:
        jax_device(distill.device)
    if training is not None:
        torch_device(training.mvae.device)


@flow(name="distill-periods", log_prints=True)
def distill_periods(
    storage_root: StorageRoot,
    dataset: DatasetName,
    periods: list[PeriodRows],
    distill: DistillConfig = DistillConfig(),
    seed: Seed = 0,
    force: bool = False,
) -> list[str]:
    """Distill each period's rows into its summary file, in order; returns their paths.

    Args:
        periods: the finished periods whose rows files the parent exported, each with the SHA-256
            of its file (the cache key's content part).
        distill: Distill-CF settings.
        force: ignore cached results and the checkpoints of interrupted runs.
    """
    check_devices(distill=distill)
    paths = []
    for rows in periods:
        work = dict(storage_root=storage_root, dataset=dataset, period=rows.period, rows_sha=rows.rows_sha,
                    distill=distill, seed=seed)
        refresh = force or not summary_path(**work).exists()
        paths.append(distill_summary.with_options(refresh_cache=refresh)(**work, force=force))
    return paths


def train_work_path(*, storage_root: str, dataset: str, period: int, work: StrategyWork, training: TrainingConfig,
                    seed: int) -> str:
    """Where ``train-period`` writes the state of ``work`` (content-addressed, see ``tasks.train``)."""
    return str(state_path(storage_root=storage_root, dataset=dataset, period=period, strategy=work.strategy,
                          inputs_sha=work.inputs_sha, previous_sha=work.previous_sha, training=training, seed=seed))


@flow(name="train-period", log_prints=True)
def train_period(
    storage_root: StorageRoot,
    dataset: DatasetName,
    period: int,
    strategies: list[StrategyWork],
    training: TrainingConfig = TrainingConfig(),
    seed: Seed = 0,
    force: bool = False,
) -> list[str]:
    """Train every strategy of one period at once; returns the paths of their new states.

    Args:
        period: the finished period whose inputs the parent exported.
        strategies: each strategy to train, with the SHA-256 of its exported inputs and its state
            after the previous period (path and SHA-256; empty for a cold start).
        training: how every strategy trains each period.
        force: ignore cached results.
    """
    check_devices(training=training)
    futures = []
    for work in strategies:
        where = dict(storage_root=storage_root, dataset=dataset, period=period)
        refresh = force or not Path(train_work_path(**where, work=work, training=training, seed=seed)).exists()
        futures.append(train_model.with_options(refresh_cache=refresh).submit(
            **where, **work.model_dump(), training=training, seed=seed, force=force))
    wait(futures)  # every strategy finishes (or fails) before the first failure is raised
    return [future.result() for future in futures]
