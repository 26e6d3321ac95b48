"""The model steps as flows of their own, deployable to the ``gpu`` pool.

``distill-period`` distills one period, ``train-period`` trains one strategy on one period. They
read and write files under the storage root only (their names come from :mod:`storage.layout`),
never open the catalog, and return their result file's path; the parent (:mod:`flows.period`)
records it afterwards. A cached result whose file is gone is computed again.
"""

from __future__ import annotations

from prefect import flow

from flows.params import DatasetName, Seed, StorageRoot
from models.configs import DistillConfig, TrainingConfig
from tasks.distill import distill_summary, summary_path
from tasks.train import state_path, train_model


@flow(name="distill-period", log_prints=True)
def distill_period(
    storage_root: StorageRoot,
    dataset: DatasetName,
    period: int,
    rows_sha: str,
    distill: DistillConfig = DistillConfig(),
    seed: Seed = 0,
    force: bool = False,
) -> str:
    """Distill one period's rows into a summary file; returns its path.

    Args:
        period: the finished period whose rows file the parent exported.
        rows_sha: SHA-256 of that file (the cache key's content part).
        distill: Distill-CF settings.
        force: ignore a cached result and a checkpoint of an interrupted run.
    """
    work = dict(storage_root=storage_root, dataset=dataset, period=period, rows_sha=rows_sha, distill=distill, seed=seed)
    refresh = force or not summary_path(**work).exists()
    return distill_summary.with_options(refresh_cache=refresh)(**work, force=force)


@flow(name="train-period", log_prints=True)
def train_period(
    storage_root: StorageRoot,
    dataset: DatasetName,
    period: int,
    strategy: str,
    inputs_sha: str,
    previous_path: str | None = None,
    previous_sha: str | None = None,
    training: TrainingConfig = TrainingConfig(),
    seed: Seed = 0,
    force: bool = False,
) -> str:
    """Train one strategy on one period; returns the path of the new strategy state.

    Args:
        period: the finished period whose inputs the parent exported.
        strategy: a registered strategy name.
        inputs_sha: SHA-256 of the exported inputs (the cache key's content part).
        previous_path: the strategy's state after the previous period (inside the dataset's
            folder), or empty for a cold start.
        previous_sha: SHA-256 of that state file.
        training: how every strategy trains each period.
        force: ignore a cached result.
    """
    work = dict(storage_root=storage_root, dataset=dataset, period=period, strategy=strategy, inputs_sha=inputs_sha,
                previous_sha=previous_sha, training=training, seed=seed)
    refresh = force or not state_path(**work).exists()
    return train_model.with_options(refresh_cache=refresh)(**work, previous_path=previous_path, force=force)
