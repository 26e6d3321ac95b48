"""``train-period``: one strategy's training as a flow of its own, deployable to the ``gpu`` pool.

It receives file paths and content hashes, never opens the catalog, and writes its result to the
output path chosen by the parent (:mod:`flows.period`), which records it afterwards.
"""

from __future__ import annotations

from prefect import flow

from flows.params import TrainPeriodParams
from tasks.train import train_strategy


@flow(name="train-period", log_prints=True)
def train_period(params: TrainPeriodParams) -> str:
    """Train one strategy on one period; returns the path of the new strategy state."""
    return train_strategy.with_options(refresh_cache=params.bypass_cache())(
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
