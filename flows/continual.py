"""The scheduled entry point: ingest new logs, close periods, process each newly finished one."""

from __future__ import annotations

from prefect import flow

from flows.ingest import ingest_flow
from flows.params import ContinualParams, IngestParams, PeriodParams
from flows.period import PeriodOutcome, needs_work, process_period
from flows.publish import publish_reports
from relay.config import get_settings
from tasks.catalog import read_done_work


@flow(name="continual", log_prints=True)
def continual_flow(params: ContinualParams) -> list[PeriodOutcome]:
    """Ingest → cut/close periods → for each finished period without its work, in order:
    distill it, evaluate the previous models on it, train every strategy → publish artifacts."""
    finished = ingest_flow(
        IngestParams(dataset=params.dataset, data=params.data, policy=params.policy)
    )
    done = read_done_work(
        str(get_settings().db), dataset=params.dataset, periods=finished,
        strategies=list(params.strategies),
    )
    todo = [p for p in finished if needs_work(done, period=p, strategies=list(params.strategies))]
    print(f"{len(finished)} finished periods, {len(todo)} to process: {todo}")
    outcomes = [
        process_period(
            PeriodParams(
                dataset=params.dataset, period=p, strategies=params.strategies,
                budgets=params.budgets, gpu_pool=params.gpu_pool,
            )
        )
        for p in todo
    ]
    publish_reports(params.dataset, outcomes)
    return outcomes
