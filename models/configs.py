"""Typed configuration of the models: the one home of every hyper-parameter default.

The pipeline's flows take these as parameters as they are (the Prefect UI renders their fields,
bounds and descriptions as forms), the CLI shows their defaults, and the benchmarks start from
them; only the static benchmarks of a paper protocol override a few fields, and say why. The
module imports no numerical library, so commands that only need the defaults start fast.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field
from pydantic.dataclasses import dataclass

Device = Literal["auto", "cpu", "cuda"]
"""Where a model runs: ``auto`` takes a GPU when the framework sees one (:mod:`models.device`)."""
Noise = Literal["independent", "pooled"]
"""The Gumbel samplers of :mod:`models.gumbel` (``SAMPLERS`` has one entry per name)."""


@dataclass(frozen=True)
class MVAEConfig:
    """Hyper-parameters of MultVAE training.

    Architecture, dropout, batch size and β cap are Liang et al.'s (2018). ``lr`` 3e-3 beat 1e-3
    on every strategy's validation nDCG@100 in the continual periods of ml-100k and
    ml-latest-small; at most 100 epochs, early-stopped with patience 10, is the per-period budget
    of the continual benchmark. β: the cap from the first update (``anneal_updates = 0``) had the
    best mean validation nDCG@100 over the four strategies on ml-100k (17 periods, seed 0): 30.19,
    against 30.01 / 30.07 / 30.14 when β rises over 50 / 200 / 1000 updates, differences within
    noise. The static ML-1M benchmark (``bench/mvae.py``) runs Liang's own
    lr 1e-3, 200 epochs, patience 20.
    """

    hidden: Annotated[int, Field(ge=1, description="width of the hidden layers")] = 600
    latent: Annotated[int, Field(ge=1, description="latent dimension")] = 200
    dropout: Annotated[float, Field(ge=0, lt=1, description="dropout on the normalised input")] = 0.5
    lr: Annotated[float, Field(gt=0, le=1, description="Adam learning rate")] = 3e-3
    batch_size: Annotated[int, Field(ge=1, description="rows per update")] = 500
    epochs: Annotated[int, Field(ge=1, le=10_000, description="maximum passes over the rows per period")] = 100
    anneal_cap: Annotated[float, Field(ge=0, description="β cap")] = 0.2
    anneal_updates: Annotated[int, Field(ge=0, description="updates of a period's training over which β rises to the cap (0: the cap from the start)")] = 0
    patience: Annotated[int, Field(ge=1, description="epochs without a better validation nDCG@100 before stopping")] = 10
    device: Annotated[Device, Field(description="auto (GPU when torch sees one), cpu or cuda")] = "auto"


@dataclass(frozen=True)
class DistillConfig:
    """Distill-CF hyper-parameters. The defaults distil one continual period (tens to a few
    thousand bags, |I| ≤ ~10k items); the static ML-1M benchmark overrides the few it changes.

    Chosen on the periods' own validation hold-out (HR@100; μ = 10): 150 steps instead of 30
    raised it 46.0 → 47.6, 39.9 → 43.2 and 32.5 → 35.1 (ml-100k periods 0, 5, 10; 30 steps were
    still improving). γ = 200 beat γ = 50 on ml-100k periods 3, 10 (47.1 → 49.7, 35.1 → 37.4) and
    ml-latest-small periods 5, 12 (25.7 → 25.8, 31.6 → 32.6): with |I| ≈ 10k items a γ = 50 draw
    is too diffuse (its mass is ≤ γ, below a real bag's). The paper's independent noise is cheap
    at this μ: on ml-100k (17 periods, μ = 10) Distill-CF replay scored mean nDCG@10 21.48 / 21.59
    / 21.62 / 20.45 / 21.12 with it and 20.33 / 21.40 / 21.71 / 20.63 / 20.98 with pooled noise
    (seeds 0–4). A period costs 3–14 s on 2 cores.

    ``tau`` and ``lr`` were chosen on ML-1M validation HR@100 of the stored summary (μ = 50,
    γ = 200, 60 steps, batch 1024; random 50 real users score 33.1):

    ======  =====  ==========  ======================  =============
    τ       lr     init_scale  dense best draw HR@100  stored HR@100
    ======  =====  ==========  ======================  =============
    0.3     0.2    6           34.9                    34.8
    0.5     0.2    6           39.0                    38.8
    0.5     0.2    3           41.2                    41.0
    0.7     0.2    3           43.6                    43.5 (thr 0.1)
    5       0.04   1           50.3                    37.5
    5       0.2    1           51.8                    45.8
    5       0.2    5           50.1                    46.0
    5       0.5    1           51.3                    47.0
    ======  =====  ==========  ======================  =============

    Stored = top-``keep_top`` entries per fake user (density of the real data); keeping 65 /
    130 / 260 / 520 entries gave 42.6 / 47.0 / 49.6 / 50.3 (the dense draw: 51.5). At μ = 500
    (γ = 200) keeping 2× instead of 1× the real rows' mean raised validation HR@100 from 53.1 to
    54.8, hence ``keep_ratio = 2``: half of the dense draw's gain for 2× the storage.
    """

    n_fake_users: Annotated[int, Field(ge=1, le=100_000, description="μ: fake users (rows) of the summary")] = 20
    gamma: Annotated[int, Field(ge=1, le=10_000, description="γ: Gumbel samples summed per fake user and step")] = 200
    tau: Annotated[float, Field(gt=0, description="Gumbel-softmax temperature τ")] = 5.0
    l2_reg: Annotated[float, Field(ge=0, description="λ₂: weight of the row-sum penalty")] = 1e-3
    lr: Annotated[float, Field(gt=0, description="Adam learning rate")] = 0.5
    steps: Annotated[int, Field(ge=1, le=100_000, description="maximum optimisation steps")] = 150
    patience: Annotated[int, Field(ge=1, description="stop after this many steps without a better validation")] = 50
    batch_size: Annotated[int | None, Field(ge=1, description="real rows per step; None: all rows")] = None
    eval_every: Annotated[int, Field(ge=1, description="validate every this many steps")] = 10
    inner_lams: Annotated[tuple[float, ...], Field(min_length=1, description="λ grid of the inner ∞-AE")] = (
        1e-5, 1e-3, 0.1, 1.0, 5.0, 50.0)
    init_scale: Annotated[float, Field(description="logit of observed items at init (0 elsewhere)")] = 1.0
    threshold: Annotated[float, Field(ge=0, le=1, description="stored entries below this are dropped")] = 0.0
    keep_top: Annotated[int | None, Field(ge=1, description="entries kept per fake user; None: keep_ratio × a real row's mean")] = None
    keep_ratio: Annotated[float, Field(gt=0, description="stored density relative to the real rows' (keep_top None)")] = 2.0
    noise: Annotated[Noise, Field(description="Gumbel sampler: independent (paper) or pooled")] = "independent"
    depth: Annotated[int, Field(ge=1, le=8, description="NTK depth (ReLU layers)")] = 1
    checkpoint_every: Annotated[int, Field(ge=1, description="steps between resumable checkpoints")] = 10
    device: Annotated[Device, Field(description="auto (GPU when JAX sees one), cpu or cuda")] = "auto"

    def __post_init__(self) -> None:
        if min(self.inner_lams) <= 0:
            raise ValueError(f"inner_lams must be positive, got {self.inner_lams}")


@dataclass(frozen=True)
class TrainingConfig:
    """How every strategy trains each period (one config for all, so the comparison is fair).

    The validation fold that early-stops every strategy holds out ``val_item_fraction`` of the
    items of ``val_row_fraction`` of the current period's bags (the same fold for every strategy,
    never period t+1). The defaults hold out 10% of every bag with ≥ 2 items: 10.0–10.2% of each
    period's interactions on ml-100k and ml-latest-small (17 periods), over every user of the
    period (≥ 29 users), where the earlier fold (20% of 10% of the bags) rested on 3–10 users.

    ADER's exemplar budget is counted in ``interactions`` by default: after period t its
    exemplars hold at most as many interactions as the Distill-CF summaries S_0..S_t, so both
    replay the same number of interactions; ``rows`` keeps ``exemplars_per_period`` rows per
    period instead.
    """

    mvae: Annotated[MVAEConfig, Field(description="MVAE hyper-parameters")] = Field(default_factory=MVAEConfig)
    exemplar_budget: Annotated[Literal["interactions", "rows"], Field(description="count ADER's budget in interactions (as many as the summaries hold) or in rows")] = "interactions"
    exemplars_per_period: Annotated[int, Field(ge=0, description="ADER exemplar rows added per period (rows budget)")] = 20
    lambda_base: Annotated[float, Field(ge=0, description="ADER's λ_base")] = 0.8
    group_by_item: Annotated[bool, Field(description="ADER herds within rarest-item groups (else globally)")] = True
    val_row_fraction: Annotated[float, Field(gt=0, le=1, description="share of the current bags in the validation fold")] = 1.0
    val_item_fraction: Annotated[float, Field(gt=0, lt=1, description="share of a validation bag's items held out")] = 0.1
