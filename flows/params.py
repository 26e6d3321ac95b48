"""Flow parameters: one Pydantic model per flow, with bounds (the Prefect UI shows a form)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Strategy = Literal["individual", "joint", "distill_cf", "ader"]
ALL_STRATEGIES: tuple[Strategy, ...] = ("individual", "joint", "distill_cf", "ader")

_DATASET = Field(
    min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$", description="Dataset name"
)


class Budgets(BaseModel):
    """Per-period compute budgets, explicit and reported (DESIGN.md §3).

    Defaults are the validation-chosen settings of bench/continual.py; `make run` on the bundled
    ml-latest-small (17 periods × 4 strategies, 2 CPU cores) takes 14–18 min in all (measured).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_fake_users: int = Field(default=20, ge=1, le=5000, description="μ: summary rows per period")
    gamma: int = Field(default=200, ge=1, le=1000, description="Gumbel samples per summary row")
    distill_steps: int = Field(default=150, ge=1, le=5000, description="Distill-CF Adam steps")
    distill_patience: int = Field(default=50, ge=1, le=5000, description="early-stop patience")
    distill_eval_every: int = Field(default=10, ge=1, le=1000, description="validate every n steps")
    mvae_epochs: int = Field(default=100, ge=1, le=1000, description="MVAE epochs per period (max)")
    mvae_patience: int = Field(default=10, ge=1, le=1000, description="MVAE early-stop patience (epochs)")
    mvae_lr: float = Field(
        default=3e-3, gt=0, le=1.0,
        description="MVAE Adam lr (3e-3 beat 1e-3 on every strategy's validation nDCG@100, ml-100k and mls)",
    )
    mvae_batch_size: int = Field(default=500, ge=1, le=100_000, description="MVAE batch size")
    exemplar_budget: int | None = Field(
        default=None, ge=1, le=100_000, description="ADER exemplar rows (None: same as μ)"
    )
    seed: int = Field(default=0, ge=0, le=2**31 - 1, description="seed for every random step")

    def distill_kwargs(self) -> dict[str, int]:
        """Keyword arguments of ``models.distill_cf.DistillConfig``."""
        return {
            "n_fake_users": self.n_fake_users,
            "gamma": self.gamma,
            "steps": self.distill_steps,
            "patience": self.distill_patience,
            "eval_every": self.distill_eval_every,
            "seed": self.seed,
        }

    def replay_kwargs(self) -> dict[str, int | float]:
        """Keyword arguments of ``tasks.train.replay_config`` (strategy training budgets)."""
        return {
            "epochs": self.mvae_epochs,
            "patience": self.mvae_patience,
            "lr": self.mvae_lr,
            "batch_size": self.mvae_batch_size,
            "exemplar_budget": self.exemplar_budget or self.n_fake_users,
            "seed": self.seed,
        }


class IngestParams(BaseModel):
    """Parameters of :func:`flows.ingest.ingest_flow`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dataset: str = _DATASET
    data: list[str] = Field(
        default_factory=list, description="Files or folders (their *.csv / *.parquet) to ingest"
    )
    policy: str = Field(
        default="equal-count:17",
        min_length=3,
        description="Period policy: 'equal-count:N' or 'calendar:week[,grace=2d]'",
    )


class ContinualParams(BaseModel):
    """Parameters of :func:`flows.continual.continual_flow` (the scheduled entry point)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dataset: str = _DATASET
    data: list[str] = Field(default_factory=list, description="Files or folders with new logs")
    policy: str = Field(default="equal-count:17", min_length=3, description="Period policy")
    strategies: list[Strategy] = Field(
        default_factory=lambda: list(ALL_STRATEGIES), min_length=1, description="Strategies"
    )
    budgets: Budgets = Field(default_factory=Budgets)
    gpu_pool: str | None = Field(
        default=None,
        description="Work pool of the distill-period/train-period deployments; None: in-process",
    )


class _PeriodWork(BaseModel):
    """Options shared by every flow that processes finished periods (UI form fields)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dataset: str = _DATASET
    strategies: list[Strategy] = Field(
        default_factory=lambda: list(ALL_STRATEGIES), min_length=1, description="Strategies"
    )
    force: bool = Field(default=False, description="Redo work that is already recorded")
    budgets: Budgets = Field(default_factory=Budgets)
    gpu_pool: str | None = Field(default=None, description="GPU work pool; None: in-process")


class PeriodParams(_PeriodWork):
    """Parameters of :func:`flows.period.process_period`: every step of one finished period."""

    period: int = Field(ge=0, le=100_000, description="The finished period to process")


class BackfillParams(_PeriodWork):
    """Parameters of :func:`flows.backfill.backfill_flow`: periods ``start..end``, in order."""

    start: int = Field(ge=0, le=100_000, description="First period (inclusive)")
    end: int = Field(ge=0, le=100_000, description="Last period (inclusive)")

    @model_validator(mode="after")
    def _ordered(self) -> BackfillParams:
        if self.end < self.start:
            raise ValueError(f"end ({self.end}) must be >= start ({self.start})")
        return self


class _RemoteStep(BaseModel):
    """Fields shared by the flows that run one period's model step from files (``gpu`` pool)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dataset: str = _DATASET
    period: int = Field(ge=0, description="Period being processed")
    output_path: str = Field(min_length=1, description="Where to write the result file")
    budgets: Budgets = Field(default_factory=Budgets)
    refresh: bool = Field(default=False, description="Ignore a cached result (force)")

    def bypass_cache(self) -> bool:
        """Whether to bypass the task cache: forced, or the cached run's output file is gone."""
        return self.refresh or not Path(self.output_path).exists()


class DistillPeriodParams(_RemoteStep):
    """Parameters of the remote :func:`flows.distill_period.distill_period` flow (files only)."""

    rows_path: str = Field(min_length=1, description="Array file with the period's rows")
    rows_sha: str = Field(min_length=64, max_length=64, description="SHA-256 of rows_path")


class TrainPeriodParams(_RemoteStep):
    """Parameters of the remote :func:`flows.train_period.train_period` flow (files only)."""

    strategy: Strategy
    inputs_path: str = Field(min_length=1, description="Array file with the training inputs")
    inputs_sha: str = Field(min_length=64, max_length=64, description="SHA-256 of inputs_path")
    previous_path: str | None = Field(default=None, description="State file of M_{t-1}")
    previous_sha: str | None = Field(default=None, description="SHA-256 of previous_path")
