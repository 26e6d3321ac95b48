"""Report artifacts shown in the Prefect UI: metric table, nDCG plot, what a run did.

Keys use lowercase letters, digits and '-' only (Prefect's rule), derived from the dataset name by
:func:`artifact_key`; the same key across runs makes the UI show the artifact's history.
"""

from __future__ import annotations

import base64

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from storage.arrays import read_json
from tasks.catalog import metrics_frame, models_frame
from tasks.policy import IO_TASK
from tasks.progress import artifact_key
from tasks.report import markdown_table, metrics_table, pivot_metric, plot_metric, rounded, transfer_table


@task(name="publish-metrics-table", **IO_TASK)
def publish_metrics_table(db: str, *, dataset: str) -> str:
    """Table artifact: one row per strategy and t with M_t's metrics on period t+1 and what its
    training replayed (:func:`tasks.report.metrics_table`), rounded for display."""
    key = artifact_key(dataset, "metrics")
    rows = rounded(metrics_table(metrics_frame(db, dataset=dataset), models_frame(db, dataset=dataset))).to_dicts()
    create_table_artifact(
        table=rows, key=key,
        description=f"{dataset}: M_t (trained through period t) on period t+1, ×100 except AUC; replayed rows and "
                    "interactions of M_t's training besides period t's own",
    )
    return key


@task(name="publish-metrics-plot", **IO_TASK)
def publish_metrics_plot(db: str, *, dataset: str) -> str:
    """Markdown artifact: the nDCG@10-per-period plot (PNG data URI) and the mean table."""
    metrics = metrics_frame(db, dataset=dataset)
    key = artifact_key(dataset, "ndcg-10-plot")
    png = base64.b64encode(plot_metric(metrics, metric="ndcg", k=10)).decode()
    forgetting = transfer_table(metrics)
    body = (
        f"# nDCG@10 per period: {dataset}\n\n"
        f"![nDCG@10 per period](data:image/png;base64,{png})\n\n"
        f"{markdown_table(pivot_metric(metrics, metric='ndcg', k=10))}\n"
    )
    if not forgetting.is_empty():
        body += ("\n## Forgetting (nDCG@10 of the last model on the periods it trained on)\n\n"
                 f"{markdown_table(forgetting)}\n")
    create_markdown_artifact(markdown=body, key=key, description="nDCG@10 of M_t on period t+1")
    return key


@task(name="publish-run-summary", **IO_TASK)
def publish_run_summary(summary_metas: list[str], train_metas: list[str], *, dataset: str) -> str:
    """Markdown artifact: each new summary's size, share of its period and device; each training
    run's rows, replayed rows and interactions, epochs, validation and device."""
    key = artifact_key(dataset, "run-summary")
    lines = [f"# Work done in this run: {dataset}", "", "## Distill-CF summaries", "",
             _row("period", "rows (μ)", "items", "interactions", "share of the period's", "steps (best)", "val HR@100",
                  "seconds", "device"), "|---" * 9 + "|"]
    for m in map(read_json, summary_metas):
        lines.append(_row(m["period"], m["rows"], m["items"], m["nnz"], f"{100 * m['share_of_period']:.1f}%",
                          f"{m['steps']} ({m['best_step']})", f"{m['best_val_hr100']:.2f}", f"{m['seconds']:.1f}",
                          m["device"]))
    lines += ["", "## Training runs", "",
              _row("strategy", "period", "current rows", "current interactions", "replayed rows",
                   "replayed interactions", "epochs (best)", "val nDCG@100", "seconds", "device"), "|---" * 10 + "|"]
    for m in map(read_json, train_metas):
        lines.append(_row(m["strategy"], m["period"], m["rows_current"], m["interactions_current"], m["rows_replayed"],
                          m["interactions_replayed"], f"{m.get('epochs', '?')} ({m['best_epoch']})",
                          f"{m['val_ndcg100']:.2f}", f"{m['seconds']:.1f}", m["device"]))
    if not summary_metas and not train_metas:
        lines += ["", "Nothing new: every requested period was already done."]
    create_markdown_artifact(markdown="\n".join(lines), key=key, description="Work done this run")
    return key


def _row(*cells: object) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"
