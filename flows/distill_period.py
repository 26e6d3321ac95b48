"""``distill-period``: the Distill-CF step as a flow of its own, deployable to the ``gpu`` pool.

It receives file paths and content hashes, never opens the catalog, and writes its result to the
output path chosen by the parent (:mod:`flows.period`), which records it afterwards.
"""

from __future__ import annotations

from prefect import flow

from flows.params import DistillPeriodParams
from tasks.distill import distill_summary


@flow(name="distill-period", log_prints=True)
def distill_period(params: DistillPeriodParams) -> str:
    """Distill one period's rows into a summary file; returns its path."""
    return distill_summary.with_options(refresh_cache=params.bypass_cache())(
        dataset=params.dataset,
        period=params.period,
        rows_path=params.rows_path,
        rows_sha=params.rows_sha,
        output_path=params.output_path,
        config=params.budgets.distill_kwargs(),
        fresh=params.refresh,
    )
