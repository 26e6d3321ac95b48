"""The GPU steps as flows of their own, deployable to the ``gpu`` work pool.

They receive file paths and content hashes, never open the catalog, and write their results to
the output path chosen by the parent (:mod:`flows.period`), which records them afterwards.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from flows.params import DistillPeriodParams, TrainPeriodParams
from tasks.compute import distill_summary, train_strategy


def _refresh(params: DistillPeriodParams | TrainPeriodParams) -> bool:
    """Bypass the task cache when forced or when the cached run's output file is gone."""
    return params.refresh or not Path(params.output_path).exists()


@flow(name="distill-period", log_prints=True)
def distill_period(params: DistillPeriodParams) -> str:
    """Distill one period's rows into a summary file; returns its path."""
    return distill_summary.with_options(refresh_cache=_refresh(params))(
        dataset=params.dataset,
        period=params.period,
        rows_path=params.rows_path,
        rows_sha=params.rows_sha,
        output_path=params.output_path,
        config=params.budgets.distill_kwargs(),
    )


@flow(name="train-period", log_prints=True)
def train_period(params: TrainPeriodParams) -> str:
    """Train one strategy on one period; returns the path of the new strategy state."""
    return train_strategy.with_options(refresh_cache=_refresh(params))(
        dataset=params.dataset,
        period=params.period,
        strategy=params.strategy,
        inputs_path=params.inputs_path,
        inputs_sha=params.inputs_sha,
        previous_path=params.previous_path,
        previous_sha=params.previous_sha,
        output_path=params.output_path,
        config=params.budgets.replay_kwargs(),
    )
