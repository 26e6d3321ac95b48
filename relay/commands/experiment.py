"""Experiment commands: ``relay experiment sample-efficiency | noise | retention``.

Each runs its flow (:mod:`flows.experiments`) in this process, prints the table and, with
``--json``, writes the results. ``--data`` is a paper-split parquet file (the authors' split) or
any interaction log (CSV, TSV, RecBole ``.inter``), split per user 80/10/10 with ``--seed``.
Empty options take the flow's defaults.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

DataOpt = Annotated[Path, typer.Option("--data", exists=True, dir_okay=False, help="Data file")]
BudgetsOpt = Annotated[str, typer.Option(
    "--budgets", help="Comma-separated user budgets: 'all', counts like 500, shares like 10% (empty: the flow's)")]
SamplersOpt = Annotated[str, typer.Option(
    "--samplers", help="Comma-separated samplers (interaction_rns, user_rns, head_user, svp_cf, svp_cf_prop, "
                       "distill_cf); empty: the flow's")]
ModelsOpt = Annotated[str, typer.Option(
    "--models", help="Comma-separated models (infinite_ae, ease, mvae, popularity); empty: the flow's")]
SeedOpt = Annotated[int, typer.Option("--seed", min=0, help="Seed of the split, samplers, noise and models")]
JsonOpt = Annotated[Optional[Path], typer.Option("--json", dir_okay=False, help="Write the results here")]


def _names(text: str) -> list[str] | None:
    return [part.strip() for part in text.split(",") if part.strip()] or None


def _options(**lists: str) -> dict[str, list[str]]:
    """The given comma-separated options as lists; empty ones are left to the flow's defaults."""
    return {name: names for name, text in lists.items() if (names := _names(text))}


def _write(path: Path | None, payload: Any) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=2))
        typer.echo(f"results written to {path}")


def sample_efficiency(data: DataOpt, budgets: BudgetsOpt = "", samplers: SamplersOpt = "", models: ModelsOpt = "",
                      seed: SeedOpt = 0, json_out: JsonOpt = None) -> None:
    """Train models on each sampler's sample of each budget, test on the full test split."""
    from flows.experiments import sample_efficiency_flow
    from tasks.experiment_report import grid_rows, table_markdown

    grid = sample_efficiency_flow(data=str(data), seed=seed, **_options(budgets=budgets, samplers=samplers,
                                                                        models=models))
    typer.echo(table_markdown(grid_rows(grid)))
    _write(json_out, grid)


def noise(data: DataOpt, levels: Annotated[str, typer.Option(
              "--noise", help="Comma-separated noise levels in % of the catalogue per user (empty: 0,1,2,5)")] = "",
          budgets: BudgetsOpt = "", samplers: SamplersOpt = "", models: ModelsOpt = "", seed: SeedOpt = 0,
          json_out: JsonOpt = None) -> None:
    """Flip a share of every user's catalogue, sample, train, test on the clean test split."""
    from flows.experiments import noise_flow
    from tasks.experiment_report import noise_rows, table_markdown

    extra = {"noise_levels": [float(v) for v in _names(levels)]} if _names(levels) else {}
    result = noise_flow(data=str(data), seed=seed, **extra, **_options(budgets=budgets, samplers=samplers,
                                                                       models=models))
    typer.echo(table_markdown(noise_rows(result["grids"], result["changes"])))
    _write(json_out, result)


def retention(data: Annotated[list[Path], typer.Option("--data", exists=True, dir_okay=False,
                                                       help="Data file (repeat for several data sets)")],
              budgets: BudgetsOpt = "", samplers: SamplersOpt = "", models: ModelsOpt = "", seed: SeedOpt = 0,
              json_out: JsonOpt = None) -> None:
    """Kendall's τ of the models' order on samples vs the full data; DATA-GENIE with ≥ 3 data sets."""
    from flows.experiments import retention_flow
    from tasks.experiment_report import retention_rows, table_markdown

    result = retention_flow(data=[str(p) for p in data], seed=seed,
                            **_options(budgets=budgets, samplers=samplers, models=models))
    typer.echo(table_markdown(retention_rows(result["retention"])))
    if result["datagenie"] is not None:
        genie = result["datagenie"]
        typer.echo(f"DATA-GENIE leave-one-data-set-out: picks the best sampler {100 * genie['accuracy']:.0f}% of "
                   f"the time, always user_rns {100 * genie['baseline_accuracy']:.0f}%")
    _write(json_out, result)


def register(app: typer.Typer) -> None:
    """Add the ``experiment`` command group to ``app``."""
    group = typer.Typer(name="experiment", help="The data-centric experiments (samplers, noise, retention).",
                        no_args_is_help=True)
    group.command("sample-efficiency")(sample_efficiency)
    group.command("noise")(noise)
    group.command("retention")(retention)
    app.add_typer(group)
