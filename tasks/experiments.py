"""Prefect tasks of the data-centric experiments: run one sampler's cells, publish the reports.

Each model task reads the split from its file (tasks pass paths, not matrices) and calls one
function of :mod:`models.experiments`; the work is deterministic given the seed, so these tasks
are neither cached nor retried. The publish tasks create a markdown artifact (the plot as a PNG
data URI, then the table) and a table artifact, keyed ``<dataset>-<experiment>``.
"""

from __future__ import annotations

import base64

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from models import datagenie, experiments
from models.configs import ExperimentConfig
from storage.static_splits import read_static_split
from tasks.experiment_report import (grid_rows, noise_rows, plot_noise, plot_sample_efficiency, retention_rows,
                                     table_markdown)
from tasks.policy import IO_TASK
from tasks.progress import artifact_key

MODEL_TASK = {"cache_policy": NO_CACHE, "retries": 0}


@task(name="run-full-data", task_run_name="full-data-noise-{noise}", **MODEL_TASK)
def run_full_data(data: str, *, models: list[str], config: ExperimentConfig, seed: int,
                  noise: float = 0.0) -> dict:
    """model → cell of every model trained on the whole (possibly noisy) training split."""
    return experiments.run_full(read_static_split(data, seed=seed), models=models, config=config, seed=seed,
                                noise=noise)


@task(name="run-sampler", task_run_name="{sampler}-noise-{noise}", **MODEL_TASK)
def run_sampler(data: str, sampler: str, *, budgets: list[str], models: list[str], config: ExperimentConfig,
                seed: int, noise: float = 0.0) -> dict:
    """model → budget → cell of one sampler (None where a budget covers the data)."""
    return experiments.run_sampler(read_static_split(data, seed=seed), sampler, budgets=budgets, models=models,
                                   config=config, seed=seed, noise=noise, log=get_run_logger().info)


@task(name="describe-data", **MODEL_TASK)
def describe_data(data: str, *, budgets: list[str], seed: int) -> dict:
    """DATA-GENIE's statistics of the training split and each budget's share of its users."""
    train = read_static_split(data, seed=seed).train
    return {"statistics": datagenie.dataset_statistics(train),
            "shares": {label: experiments.budget_share(label, train) for label in budgets}}


def _publish(dataset: str, experiment: str, *, title: str, png: bytes | None, rows: list[dict]) -> str:
    key = artifact_key(dataset, experiment)
    image = "" if png is None else f"![{title}](data:image/png;base64,{base64.b64encode(png).decode()})\n\n"
    create_markdown_artifact(markdown=f"# {title}\n\n{image}{table_markdown(rows)}\n", key=key, description=title)
    create_table_artifact(table=rows, key=f"{key}-table", description=title)
    return key


@task(name="publish-sample-efficiency", **IO_TASK)
def publish_sample_efficiency(grid: experiments.Grid, *, dataset: str) -> str:
    """Plot (HR@10 and PSP@10 against the budget) and table of the sample-efficiency grid."""
    title = f"Sample efficiency: {dataset}"
    return _publish(dataset, "sample-efficiency", title=title, png=plot_sample_efficiency(grid, title=title),
                    rows=grid_rows(grid))


@task(name="publish-noise", **IO_TASK)
def publish_noise(grids: dict[str, experiments.Grid], drops: dict, *, dataset: str) -> str:
    """Plot (% change of HR@10 against the full clean data) and table of the noise experiment."""
    title = f"Noise robustness: {dataset}"
    return _publish(dataset, "noise", title=title, png=plot_noise(grids, drops, title=title),
                    rows=noise_rows(grids, drops))


@task(name="publish-retention", **IO_TASK)
def publish_retention(retentions: dict, genie: dict | None, *, name: str) -> str:
    """Table of the ranking retention per data set, and DATA-GENIE's leave-one-out picks."""
    key = _publish(name, "retention", title=f"Ranking retention (Kendall's τ): {name}", png=None,
                   rows=retention_rows(retentions))
    if genie is not None:
        summary = {k: v for k, v in genie.items() if k != "picks"}
        _publish(name, "datagenie", title=f"DATA-GENIE leave-one-data-set-out: {summary}", png=None,
                 rows=genie["picks"])
    return key
