"""Typed flow parameters shared by the flows: names, defaults and the period job.

The model configurations (:class:`models.configs.DistillConfig`,
:class:`models.configs.TrainingConfig`) are flow parameters as they are: their defaults are the
only defaults, and the Prefect UI renders their fields (with bounds and descriptions) as forms.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from models.configs import DistillConfig, TrainingConfig
from models.strategies import STRATEGIES, get_strategy
from storage.layout import DEFAULT_DB, DEFAULT_STORAGE_ROOT, NAME_RULE, check_name


def _known_strategies(names: list[str]) -> list[str]:
    for name in names:
        get_strategy(name)
    if len(set(names)) != len(names):
        raise ValueError(f"strategies must not repeat, got {names}")
    return names


DatasetName = Annotated[str, AfterValidator(check_name), Field(description=f"Dataset name ({NAME_RULE})")]
StrategyNames = Annotated[
    list[str], AfterValidator(_known_strategies),
    Field(min_length=1, description=f"Strategies to train, from: {', '.join(STRATEGIES)}"),
]
Seed = Annotated[int, Field(ge=0, le=2**31 - 1, description="Seed of every random step")]
CatalogPath = Annotated[str, Field(min_length=1, description="DuckDB catalog file")]
StorageRoot = Annotated[str, Field(min_length=1, description="Folder for inputs, summaries, model states")]
MatrixWindow = Annotated[
    int, Field(ge=0, description="M_t is also evaluated on the periods up to t, this many of them (forgetting); 0: off")
]
GpuPool = Annotated[
    str | None, Field(description="Run the model steps as the gpu-pool deployments (name of the pool); "
                                  "empty: in this process")
]


def all_strategies() -> list[str]:
    """Every registered strategy, in report order."""
    return list(STRATEGIES)


class PeriodJob(BaseModel):
    """What processing a finished period needs (built by the continual and backfill flows)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dataset: DatasetName
    strategies: StrategyNames
    force: bool = False
    distill: DistillConfig = Field(default_factory=DistillConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    seed: Seed = 0
    matrix_window: MatrixWindow = 16
    db: CatalogPath = DEFAULT_DB
    storage_root: StorageRoot = DEFAULT_STORAGE_ROOT
    gpu_pool: GpuPool = None
