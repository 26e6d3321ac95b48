"""Report helpers shared by the artifacts and ``relay report``: metric tables and the plot.

Plain functions over the catalog's metrics frame (``storage.results.read_metrics`` columns:
dataset, strategy, trained_through, evaluated_on, metric, k, value, run_id). No Prefect here.
"""

from __future__ import annotations

import io

import polars as pl

from models.metrics import metric_key

REPORT_METRICS: tuple[tuple[str, int], ...] = (
    ("ndcg", 10),
    ("hr", 10),
    ("ndcg", 100),
    ("hr", 100),
    ("psp", 10),
    ("auc", 0),
)


def long_table(metrics: pl.DataFrame) -> pl.DataFrame:
    """One row per (strategy, trained_through, evaluated_on), one column per report metric."""
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


def pivot_metric(metrics: pl.DataFrame, *, metric: str = "ndcg", k: int = 10) -> pl.DataFrame:
    """Strategy × evaluated period for one metric, plus the mean over periods."""
    one = metrics.filter((pl.col("metric") == metric) & (pl.col("k") == k))
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

    one = metrics.filter((pl.col("metric") == metric) & (pl.col("k") == k)).sort("evaluated_on")
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for (strategy,), part in one.group_by(["strategy"], maintain_order=True):
        ax.plot(part["evaluated_on"], part["value"], marker="o", label=str(strategy))
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


def markdown_table(frame: pl.DataFrame, *, digits: int = 2) -> str:
    """A GitHub-markdown table of ``frame``; floats rounded for display only."""
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    lines = [header, rule]
    for row in frame.iter_rows():
        cells = [f"{v:.{digits}f}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
