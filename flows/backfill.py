"""Backfill: the per-period steps over historical periods, in order (Prefect has none built in)."""

from __future__ import annotations

from prefect import flow

from flows.params import BackfillParams, PeriodParams
from flows.period import PeriodOutcome, process_period
from flows.publish import publish_reports
from relay.config import get_settings
from tasks.catalog import list_periods


@flow(name="backfill", log_prints=True)
def backfill_flow(params: BackfillParams) -> list[PeriodOutcome]:
    """Process finished periods ``start..end`` in order, skipping recorded work unless ``force``."""
    table = list_periods(str(get_settings().db), dataset=params.dataset)
    finished = {int(p) for p, s in table.select("period", "status").rows() if s == "finished"}
    wanted = range(params.start, params.end + 1)
    missing = [p for p in wanted if p not in finished]
    if missing:
        raise ValueError(f"periods {missing} of {params.dataset!r} are not finished (or unknown)")
    outcomes = [
        process_period(
            PeriodParams(
                dataset=params.dataset, period=p, strategies=params.strategies,
                force=params.force, budgets=params.budgets, gpu_pool=params.gpu_pool,
            )
        )
        for p in wanted
    ]
    publish_reports(params.dataset, outcomes)
    return outcomes
