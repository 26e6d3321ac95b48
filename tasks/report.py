"""Report helpers shared by the artifacts and ``relay report``: metric tables, plots, forgetting.

Plain functions over the catalog's metrics frame (``storage.results.read_metrics`` columns:
dataset, strategy, trained_through, evaluated_on, metric, k, value, run_id). The continual
protocol's test is M_t on period t+1 (:func:`next_period`); the rows with evaluated_on ≤
trained_through form the accuracy matrix (:func:`accuracy_matrix`). No Prefect here.
"""

from __future__ import annotations

import io

import numpy as np
import polars as pl

from models.comparison import transfer
from models.metrics import metric_key

REPLAY_COLUMNS = {"rows_replayed": "replayed rows", "interactions_replayed": "replayed interactions"}
"""What a model's training replayed besides its period's rows (``storage.results.read_models``), as shown."""
REPORT_METRICS: tuple[tuple[str, int], ...] = (
    ("ndcg", 10),
    ("hr", 10),
    ("ndcg", 100),
    ("hr", 100),
    ("psp", 10),
    ("auc", 0),
)


def next_period(metrics: pl.DataFrame) -> pl.DataFrame:
    """The rows of M_t evaluated on period t+1 (the continual protocol's test)."""
    return metrics.filter(pl.col("evaluated_on") == pl.col("trained_through") + 1)


def long_table(metrics: pl.DataFrame) -> pl.DataFrame:
    """One row per (strategy, t, t+1) of M_t on period t+1, one column per report metric."""
    metrics = next_period(metrics)
    keys = ["strategy", "trained_through", "evaluated_on"]
    wanted = pl.DataFrame(
        {"metric": [m for m, _ in REPORT_METRICS], "k": [k for _, k in REPORT_METRICS],
         "name": [metric_key(m, k) for m, k in REPORT_METRICS]},
        schema={"metric": metrics.schema["metric"], "k": metrics.schema["k"], "name": pl.Utf8},
    )
    picked = metrics.join(wanted, on=["metric", "k"], how="inner")
    if picked.is_empty():
        return pl.DataFrame(schema={k: pl.Int64 for k in keys} | {"strategy": pl.Utf8})
    table = picked.pivot(on="name", index=keys, values="value", aggregate_function="first")
    order = [metric_key(m, k) for m, k in REPORT_METRICS if metric_key(m, k) in table.columns]
    return table.select(keys + order).sort(["strategy", "evaluated_on"])


def with_replay(table: pl.DataFrame, models: pl.DataFrame) -> pl.DataFrame:
    """``table`` (keyed by strategy and trained_through) with what each M_t's training replayed
    (columns ``replayed rows``, ``replayed interactions``; empty when unknown)."""
    replay = models.select("strategy", pl.col("period").alias("trained_through"), *REPLAY_COLUMNS).rename(
        REPLAY_COLUMNS)
    return table.join(replay, on=["strategy", "trained_through"], how="left")


def metrics_table(metrics: pl.DataFrame, models: pl.DataFrame) -> pl.DataFrame:
    """The metrics table as shown: one row per strategy and t (M_t on period t+1) with the report
    metrics and what M_t's training replayed; ten short columns, so it fits a laptop screen."""
    return with_replay(long_table(metrics), models).drop("evaluated_on").rename({"trained_through": "t"})


def replay_pivot(models: pl.DataFrame) -> pl.DataFrame:
    """Strategy × period t: "interactions (rows)" that M_t's training replayed besides period t's rows."""
    if models.is_empty():
        return pl.DataFrame({"strategy": []}, schema={"strategy": pl.Utf8})
    cells = models.sort("period").with_columns(
        col=pl.format("p{}", pl.col("period")),
        cell=pl.format("{} ({})", pl.col("interactions_replayed"), pl.col("rows_replayed")))
    return cells.pivot(on="col", index="strategy", values="cell", aggregate_function="first").sort("strategy")


def pivot_metric(metrics: pl.DataFrame, *, metric: str = "ndcg", k: int = 10) -> pl.DataFrame:
    """Strategy × evaluated period (M_t on t+1) for one metric, plus the mean over periods."""
    one = next_period(metrics).filter((pl.col("metric") == metric) & (pl.col("k") == k))
    if one.is_empty():
        return pl.DataFrame({"strategy": []}, schema={"strategy": pl.Utf8})
    one = one.sort("evaluated_on").with_columns(col=pl.format("p{}", pl.col("evaluated_on")))
    wide = one.pivot(on="col", index="strategy", values="value", aggregate_function="first")
    means = one.group_by("strategy").agg(mean=pl.col("value").mean())
    return wide.join(means, on="strategy").sort("strategy")


def plot_metric(metrics: pl.DataFrame, *, metric: str = "ndcg", k: int = 10) -> bytes:
    """PNG bytes of ``metric@k`` of M_t evaluated on period t+1, one line per strategy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    one = next_period(metrics).filter((pl.col("metric") == metric) & (pl.col("k") == k)).sort("evaluated_on")
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for (strategy,), part in one.group_by(["strategy"], maintain_order=True):
        ax.plot(part["evaluated_on"], part["value"], marker="o", label=str(strategy))
    if not one.is_empty():
        ax.set_xticks(sorted(set(one["evaluated_on"].to_list())))  # whole periods only
    ax.set_xlabel("evaluated on period t+1")
    ax.set_ylabel(metric_key(metric, k))
    ax.set_title(f"{metric_key(metric, k)} of M_t on the next period")
    ax.grid(alpha=0.3)
    if not one.is_empty():
        ax.legend()
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def accuracy_matrix(metrics: pl.DataFrame, *, strategy: str, metric: str = "ndcg", k: int = 10) -> pl.DataFrame:
    """R[t, j]: ``metric@k`` of the model trained through t (rows) on period j (columns ``p<j>``),
    over every evaluation recorded (j ≤ t from the forgetting evaluations, j = t+1 the test)."""
    one = metrics.filter((pl.col("strategy") == strategy) & (pl.col("metric") == metric) & (pl.col("k") == k))
    if one.is_empty():
        return pl.DataFrame({"trained_through": []}, schema={"trained_through": pl.Int64})
    one = one.sort("evaluated_on").with_columns(col=pl.format("p{}", pl.col("evaluated_on")))
    return one.pivot(on="col", index="trained_through", values="value", aggregate_function="first").sort(
        "trained_through")


def transfer_table(metrics: pl.DataFrame, *, metric: str = "ndcg", k: int = 10) -> pl.DataFrame:
    """Per strategy: the last model's average accuracy over the periods it trained on and its
    backward transfer (``models.comparison.transfer``; negative = forgetting), from the matrix."""
    rows = []
    for strategy in sorted(metrics["strategy"].unique().to_list()):
        wide = accuracy_matrix(metrics, strategy=strategy, metric=metric, k=k)
        periods = wide["trained_through"].to_list()
        if not periods:
            continue
        r = np.full((max(periods) + 1, max(periods) + 2), np.nan)
        for row in wide.iter_rows(named=True):
            for col, value in row.items():
                if col != "trained_through" and value is not None:
                    r[row["trained_through"], int(col[1:])] = value
        if np.isnan(np.diagonal(r)).any():
            continue  # the forgetting evaluations were not recorded
        summary = transfer(r)
        rows.append({"strategy": strategy, "accuracy": summary["accuracy"],
                     "backward_transfer": summary["backward_transfer"]})
    return pl.DataFrame(rows, schema={"strategy": pl.Utf8, "accuracy": pl.Float64, "backward_transfer": pl.Float64})


def _digits(column: str, default: int = 2) -> int:
    """Decimals shown for a column: AUC 4, replayed counts 0, others ``default``."""
    return 4 if column.startswith("auc") else 0 if column.startswith("replayed") else default


def rounded(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` rounded for display: AUC columns to 4 decimals, replayed counts to integers, other floats to 2."""
    return frame.with_columns(
        [pl.col(c).round(_digits(c)) for c, t in frame.schema.items() if t.is_float()])


def markdown_table(frame: pl.DataFrame, *, digits: int = 2) -> str:
    """A GitHub-markdown table of ``frame``; floats rounded for display only (AUC to 4 decimals,
    replayed counts to integers, others to ``digits``)."""
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    lines = [header, rule]
    for row in frame.iter_rows():
        cells = [("-" if v != v else f"{v:.{_digits(c, digits)}f}") if isinstance(v, float)
                 else "-" if v is None else str(v) for c, v in zip(frame.columns, row)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
