"""Report helpers of the data-centric experiments: flat tables and plots (PNG bytes).

Shared by the experiment artifacts (:mod:`tasks.experiments`), the command line and the
benchmarks; plain functions over the results of :mod:`models.experiments` and
:mod:`models.datagenie`. No Prefect here.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import polars as pl

from models.experiments import FULL, REPORT_KEYS, Grid
from tasks.report import markdown_table

_CELL_KEYS = ("users", "interactions", *REPORT_KEYS)


def grid_rows(grid: Grid) -> list[dict]:
    """One row per (model, sampler, budget): kept users and interactions, the metrics."""
    return [{"model": model, "sampler": sampler, "budget": label} | {k: cell[k] for k in _CELL_KEYS}
            for model, per_sampler in grid.items() for sampler, cells in per_sampler.items()
            for label, cell in cells.items()]


def pivot_rows(grid: Grid, metric: str) -> list[dict]:
    """One row per (model, sampler), one column per budget: ``metric`` (how the paper's plots read)."""
    return [{"model": model, "sampler": sampler} | {label: cell[metric] for label, cell in cells.items()}
            for model, per_sampler in grid.items() for sampler, cells in per_sampler.items()]


def noise_rows(grids: Mapping[str, Grid], drops: Mapping[str, Mapping]) -> list[dict]:
    """One row per (noise, model, sampler, budget): the metrics and their % change against the
    full clean data (:func:`models.experiments.noise_drops`)."""
    return [{"noise": noise} | row | {f"change_{k}": drops[noise][row["model"]][row["sampler"]][row["budget"]][k]
                                      for k in REPORT_KEYS}
            for noise, grid in grids.items() for row in grid_rows(grid)]


def retention_rows(retentions: Mapping[str, Mapping[str, Mapping[str, dict[str, float]]]]) -> list[dict]:
    """One row per (data set, sampler, budget): τ averaged over the metrics, then per metric."""
    return [{"dataset": dataset, "sampler": sampler, "budget": label} | values
            for dataset, per_sampler in retentions.items() for sampler, cells in per_sampler.items()
            for label, values in cells.items()]


def table_markdown(rows: Sequence[dict], *, digits: int = 2) -> str:
    """A markdown table of flat rows (floats rounded for display only)."""
    return markdown_table(pl.DataFrame(list(rows)), digits=digits) if rows else "(no rows)"


def _x(cell: dict) -> float:
    return cell["budget_users"]


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def _figure(n_rows: int, n_cols: int):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(n_rows, n_cols, figsize=(4.2 * n_cols, 3.2 * n_rows), squeeze=False)


def plot_sample_efficiency(grid: Grid, *, title: str, metrics: Sequence[str] = ("hr@10", "psp@10")) -> bytes:
    """Metric against the user budget (log axis), one panel per (metric, model), one line per
    sampler (paper Fig. 1); the rightmost point of every line is the full data."""
    models = list(grid)
    fig, axes = _figure(len(metrics), len(models))
    for col, model in enumerate(models):
        for row, metric in enumerate(metrics):
            ax = axes[row][col]
            for sampler, cells in grid[model].items():
                points = sorted((_x(c), c[metric]) for c in cells.values())
                ax.plot(*zip(*points), marker="o", markersize=3, label=sampler)
            ax.set_xscale("log")
            ax.set_xlabel("budget (users)")
            ax.set_ylabel(metric)
            ax.set_title(f"{model}: {metric}")
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title)
    return _png(fig)


def plot_noise(grids: Mapping[str, Grid], drops: Mapping[str, Mapping], *, title: str,
               metric: str = "hr@10") -> bytes:
    """% change of ``metric`` against the full clean data, against the user budget (log axis):
    one panel per (model, noise level), one line per sampler (paper Figs. 3–4); the dashed line is
    the full noisy data."""
    noises = list(grids)
    models = list(next(iter(grids.values())))
    fig, axes = _figure(len(models), len(noises))
    for col, noise in enumerate(noises):
        for row, model in enumerate(models):
            ax = axes[row][col]
            for sampler, cells in grids[noise][model].items():
                change = drops[noise][model][sampler]
                points = sorted((_x(c), change[label][metric]) for label, c in cells.items())
                ax.plot(*zip(*points), marker="o", markersize=3, label=sampler)
            full = next(iter(drops[noise][model].values())).get(FULL)
            if full is not None:
                ax.axhline(full[metric], color="black", linestyle="--", linewidth=1)
            ax.axhline(0.0, color="grey", linewidth=0.8)
            ax.set_xscale("log")
            ax.set_xlabel("budget (users)")
            ax.set_ylabel(f"% change of {metric}")
            ax.set_title(f"{model}, noise {noise}")
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title)
    return _png(fig)
