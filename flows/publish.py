"""Publish the run's artifacts: metric table, nDCG@10 plot, and what this run did."""

from __future__ import annotations

from flows.params import PeriodJob
from flows.period import PeriodOutcome
from tasks.artifacts import publish_metrics_plot, publish_metrics_table, publish_run_summary


def publish_reports(job: PeriodJob, outcomes: list[PeriodOutcome]) -> list[str]:
    """Create/refresh the dataset's artifacts (called at the end of a flow); returns their keys."""
    return [
        publish_metrics_table(job.db, dataset=job.dataset),
        publish_metrics_plot(job.db, dataset=job.dataset),
        publish_run_summary(
            [m for o in outcomes for m in o.summary_metas],
            [m for o in outcomes for m in o.train_metas],
            dataset=job.dataset,
        ),
    ]
