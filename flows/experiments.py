"""The data-centric experiment flows: sample efficiency, noise robustness, ranking retention.

Each reads a static split from a file (a paper-split parquet file as the authors split it, any
other log split per user with the seed: :mod:`storage.static_splits`), runs one task per sampler
(plus the full-data reference) and publishes a plot and a table as artifacts. The grids they
return map model → sampler → budget → metrics (:mod:`models.experiments`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from prefect import flow
from pydantic import AfterValidator, Field

from models import datagenie, experiments
from models.configs import DataGenieConfig, ExperimentConfig
from models.recommenders import RECOMMENDERS, get_recommender
from models.samplers import SAMPLERS, SELECTORS, get_sampler
from storage.static_splits import dataset_label
from tasks.experiments import (describe_data, publish_noise, publish_retention, publish_sample_efficiency,
                               run_full_data, run_sampler)

DEFAULT_BUDGETS = ["50", "100", "200", "500", "1000", "2000", "all"]
RETENTION_BUDGETS = ["5%", "10%", "25%", "50%"]


def _distinct_known(lookup: Callable[[str], Any]) -> Callable[[list[str]], list[str]]:
    """A validator: no name repeats, and ``lookup`` (which raises on an unknown name) knows each."""
    def validate(names: list[str]) -> list[str]:
        if len(set(names)) != len(names):
            raise ValueError(f"names must not repeat, got {names}")
        return [lookup(name).name for name in names]
    return validate


Budgets = Annotated[list[str], AfterValidator(lambda labels: [experiments.check_budget(b) for b in labels]),
                    Field(min_length=1, description="user budgets: 'all', counts like '500', shares like '10%'")]
SamplerNames = Annotated[list[str], AfterValidator(_distinct_known(get_sampler)),
                         Field(min_length=1, description=f"samplers, from: {', '.join(SAMPLERS)}")]
ModelNames = Annotated[list[str], AfterValidator(_distinct_known(get_recommender)),
                       Field(min_length=1, description=f"models, from: {', '.join(RECOMMENDERS)}")]
DataFile = Annotated[str, Field(min_length=1, description="paper-split parquet file or interaction log")]
Seed = Annotated[int, Field(ge=0, le=2**31 - 1, description="seed of the split, samplers, noise and models")]


def _grid(data: str, *, samplers: list[str], budgets: list[str], models: list[str], config: ExperimentConfig,
          seed: int, noise: float = 0.0, full: dict | None = None) -> experiments.Grid:
    """Every sampler's cells and the full-data reference, as model → sampler → budget."""
    full = full or run_full_data(data, models=models, config=config, seed=seed, noise=noise)
    rows = {s: run_sampler(data, s, budgets=budgets, models=models, config=config, seed=seed, noise=noise)
            for s in samplers}
    return experiments.assemble(rows, full)


@flow(name="sample-efficiency", log_prints=True)
def sample_efficiency_flow(
    data: DataFile,
    budgets: Budgets = DEFAULT_BUDGETS,
    samplers: SamplerNames | None = None,
    models: ModelNames = ["infinite_ae", "ease"],
    config: ExperimentConfig = ExperimentConfig(),
    seed: Seed = 0,
) -> experiments.Grid:
    """Train each model on each sampler's sample of each budget; test on the full test split
    (paper Fig. 1). Publishes <dataset>-sample-efficiency.

    Args:
        data: the data file.
        budgets: user budgets (interaction samplers keep the matching share of interactions).
        samplers: samplers to compare; empty: every registered one.
        models: models trained on every sample.
        config: how the models and samplers fit.
        seed: seed of every random step.
    """
    grid = _grid(data, samplers=samplers or list(SAMPLERS), budgets=budgets, models=models, config=config,
                 seed=seed)
    publish_sample_efficiency(grid, dataset=dataset_label(data))
    return grid


@flow(name="noise", log_prints=True)
def noise_flow(
    data: DataFile,
    noise_levels: Annotated[list[float], Field(min_length=1, description="noise in % of the catalogue per user")] = [
        0.0, 1.0, 2.0, 5.0],
    budgets: Budgets = ["100", "500", "2000", "all"],
    samplers: SamplerNames | None = None,
    models: ModelNames = ["ease", "infinite_ae"],
    config: ExperimentConfig = ExperimentConfig(),
    seed: Seed = 0,
) -> dict:
    """Flip noise % of the catalogue per user in the training split, sample, train, test on
    the clean test split; report the change against the full clean data (paper Figs. 3–4).
    Publishes <dataset>-noise.

    Returns:
        {"grids": {noise: grid}, "changes": {noise: model → sampler → budget → % change}}.
    """
    samplers = samplers or list(SAMPLERS)
    reference = run_full_data(data, models=models, config=config, seed=seed)
    grids = {f"{level:g}%": _grid(data, samplers=samplers, budgets=budgets, models=models, config=config, seed=seed,
                                  noise=level / 100, full=reference if level == 0 else None)
             for level in noise_levels}
    changes = experiments.noise_drops(grids, reference)
    publish_noise(grids, changes, dataset=dataset_label(data))
    return {"grids": grids, "changes": changes}


@flow(name="retention", log_prints=True)
def retention_flow(
    data: Annotated[list[DataFile], Field(min_length=1, description="data files, one per data set")],
    budgets: Budgets = RETENTION_BUDGETS,
    samplers: SamplerNames | None = None,
    models: ModelNames = list(RECOMMENDERS),
    config: ExperimentConfig = ExperimentConfig(),
    genie: DataGenieConfig = DataGenieConfig(),
    seed: Seed = 0,
    name: Annotated[str, Field(min_length=1, description="artifact key prefix")] = "experiments",
) -> dict:
    """Kendall's τ between the models' order on each sample and on the full data, per data set;
    with ≥ 3 data sets, DATA-GENIE's leave-one-data-set-out picks. Publishes <name>-retention
    (and <name>-datagenie).

    Returns:
        {"grids": {dataset: grid}, "retention": {dataset: sampler → budget → τ},
        "statistics": {dataset: …}, "datagenie": leave-one-out result or None}.
    """
    samplers = samplers or list(SELECTORS)
    out: dict = {"grids": {}, "retention": {}, "statistics": {}}
    observations = []
    for path in data:
        dataset = dataset_label(path)
        out["grids"][dataset] = _grid(path, samplers=samplers, budgets=budgets, models=models, config=config,
                                      seed=seed)
        out["retention"][dataset] = experiments.retention(out["grids"][dataset])
        described = describe_data(path, budgets=budgets, seed=seed)
        out["statistics"][dataset] = described
        observations += datagenie.observations_from(dataset, out["retention"][dataset], described["shares"],
                                                    described["statistics"])
    out["datagenie"] = datagenie.leave_one_dataset_out(observations, config=genie) if len(data) >= 3 else None
    publish_retention(out["retention"], out["datagenie"], name=name)
    return out
