"""Artifacts shown in the Prefect UI: metric table, nDCG plot, run summary, live progress.

Keys use lowercase letters, digits and '-' only (Prefect's rule), derived from the dataset name by
:func:`artifact_key`; the same key across runs makes the UI show the artifact's history.
"""

from __future__ import annotations

import base64
import math
import re
import time
from uuid import UUID

from prefect import task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from tasks.catalog import metrics_frame
from tasks.files import read_json
from tasks.policy import IO_TASK
from tasks.report import long_table, markdown_table, pivot_metric, plot_metric



def artifact_key(*parts: object) -> str:
    """Join ``parts`` into a valid artifact key: lowercase letters, digits and '-'."""
    text = "-".join(str(p) for p in parts).lower()
    key = re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", text)).strip("-")
    if not key:
        raise ValueError(f"artifact key from {parts!r} is empty")
    return key


class ProgressReporter:
    """A progress callback ``(steps_done, *metrics)`` that moves one progress artifact.

    Updates are throttled to one API call per ``every_s`` seconds (plus the last planned step), so
    a fast loop does not flood the server. An early stop leaves the bar short of 100 % until
    :meth:`done` is called.
    """

    def __init__(self, key: str, *, total: int, description: str, every_s: float = 2.0) -> None:
        self.total, self.description, self.every_s = total, description, every_s
        self.artifact_id = create_progress_artifact(progress=0.0, key=key, description=description)
        self._last = -math.inf  # the first update always goes through (monotonic() may be < every_s)

    def __call__(self, steps_done: int, *metrics: float) -> None:
        now = time.monotonic()
        if steps_done >= self.total or now - self._last >= self.every_s:
            self._last = now
            shown = ", ".join(f"{m:.4g}" for m in metrics)
            update_progress_artifact(
                self.artifact_id,
                progress=min(100.0, 100.0 * steps_done / self.total),
                description=f"{self.description}: step {steps_done}/{self.total} ({shown})",
            )

    def done(self) -> None:
        """Mark the work finished (100 %)."""
        update_progress_artifact(
            self.artifact_id, progress=100.0, description=f"{self.description}: done"
        )


@task(name="start-progress", **IO_TASK)
def start_progress(key: str, *, description: str) -> UUID:
    """Create a progress artifact at 0 % and return its id."""
    return create_progress_artifact(progress=0.0, key=key, description=description)


@task(name="set-progress", **IO_TASK)
def set_progress(artifact_id: UUID, *, progress: float, description: str) -> None:
    """Move a progress artifact to ``progress`` % (0-100)."""
    update_progress_artifact(artifact_id, progress=progress, description=description)


@task(name="publish-metrics-table", **IO_TASK)
def publish_metrics_table(db: str, *, dataset: str) -> str:
    """Table artifact: one row per (strategy, evaluated period) with the report metrics."""
    metrics = metrics_frame(db, dataset=dataset)
    key = artifact_key(dataset, "metrics")
    rows = long_table(metrics).to_dicts()
    create_table_artifact(
        table=rows, key=key, description=f"Per-period metrics of M_t on period t+1 ({dataset})"
    )
    return key


@task(name="publish-metrics-plot", **IO_TASK)
def publish_metrics_plot(db: str, *, dataset: str) -> str:
    """Markdown artifact: the nDCG@10-per-period plot (PNG data URI) and the mean table."""
    metrics = metrics_frame(db, dataset=dataset)
    key = artifact_key(dataset, "ndcg-10-plot")
    png = base64.b64encode(plot_metric(metrics, metric="ndcg", k=10)).decode()
    body = (
        f"# nDCG@10 per period: {dataset}\n\n"
        f"![nDCG@10 per period](data:image/png;base64,{png})\n\n"
        f"{markdown_table(pivot_metric(metrics, metric='ndcg', k=10))}\n"
    )
    create_markdown_artifact(markdown=body, key=key, description="nDCG@10 of M_t on period t+1")
    return key


@task(name="publish-run-summary", **IO_TASK)
def publish_run_summary(summary_metas: list[str], train_metas: list[str], *, dataset: str) -> str:
    """Markdown artifact: each new summary's size and density, each training run's rows."""
    key = artifact_key(dataset, "run-summary")
    lines = [f"# Work done in this run: {dataset}", "", "## Distill-CF summaries", ""]
    lines += ["| period | rows (μ) | items | non-zeros | density | loss | seconds |"]
    lines += ["|---" * 7 + "|"]
    for path in summary_metas:
        m = read_json(path)
        lines.append(
            f"| {m['period']} | {m['rows']} | {m['items']} | {m['nnz']} | {m['density']:.4f} "
            f"| {m['loss']:.4f} | {m['seconds']:.1f} |"
        )
    lines += ["", "## Training runs", ""]
    lines += ["| strategy | period | current rows | replayed rows | seconds |", "|---" * 5 + "|"]
    for path in train_metas:
        m = read_json(path)
        lines.append(
            f"| {m['strategy']} | {m['period']} | {m['rows_current']} | {m['rows_replayed']} "
            f"| {m['seconds']:.1f} |"
        )
    if not summary_metas and not train_metas:
        lines += ["", "Nothing new: every requested period was already done."]
    create_markdown_artifact(markdown="\n".join(lines), key=key, description="Work done this run")
    return key
