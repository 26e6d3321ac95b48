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
    """Distill-CF hyper-parameters. The defaults distil one continual period; the static ML-1M
    benchmark overrides the few it changes. Memory is bounded by the minibatch (``batch_size``
    real rows a step, ``val_rows`` validation bags) and μ, not by the period's size.

    μ: ``n_fake_users`` is an upper bound; a period's summary holds at most ``max_share`` of the
    period's interactions (μ × the entries kept per fake user). On ml-100k (17 periods, seeds
    0–2, summaries uncapped) the validation nDCG@100 of Distill-CF replay rose with μ — 28.14,
    28.48, 28.77, 29.02 at μ = 1, 2, 3, 5 (summaries holding 1.6–8.0% of a period) and 29.11,
    29.58, 29.65 at μ = 10, 20, 40 (15.9–63.7%) — so within the 10% rule the largest μ that fits
    wins, which is what the cap keeps.

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
    batch_size: Annotated[int | None, Field(ge=1, description="real rows per step (memory is O(batch × items)); None: all rows")] = 1024
    val_rows: Annotated[int, Field(ge=1, description="most bags of a period whose items validate its summary")] = 2048
    eval_every: Annotated[int, Field(ge=1, description="validate every this many steps")] = 10
    inner_lams: Annotated[tuple[float, ...], Field(min_length=1, description="λ grid of the inner ∞-AE")] = (
        1e-5, 1e-3, 0.1, 1.0, 5.0, 50.0)
    init_scale: Annotated[float, Field(description="logit of observed items at init (0 elsewhere)")] = 1.0
    threshold: Annotated[float, Field(ge=0, le=1, description="stored entries below this are dropped")] = 0.0
    keep_top: Annotated[int | None, Field(ge=1, description="entries kept per fake user; None: keep_ratio × a real row's mean")] = None
    keep_ratio: Annotated[float, Field(gt=0, description="stored density relative to the real rows' (keep_top None)")] = 2.0
    max_share: Annotated[float | None, Field(gt=0, le=1, description="a period's summary holds at most this share of its interactions (μ is capped); None: no cap")] = 0.1
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
    replay the same number of interactions; ``rows`` keeps as many rows as the summaries have
    fake users instead.
    """

    mvae: Annotated[MVAEConfig, Field(description="MVAE hyper-parameters")] = Field(default_factory=MVAEConfig)
    exemplar_budget: Annotated[Literal["interactions", "rows"], Field(description="ADER keeps as many interactions as the summaries hold, or as many rows")] = "interactions"
    lambda_base: Annotated[float, Field(ge=0, description="ADER's λ_base")] = 0.8
    group_by_item: Annotated[bool, Field(description="ADER herds within rarest-item groups (else globally)")] = True
    val_row_fraction: Annotated[float, Field(gt=0, le=1, description="share of the current bags in the validation fold")] = 1.0
    val_item_fraction: Annotated[float, Field(gt=0, lt=1, description="share of a validation bag's items held out")] = 0.1


def static_distill_config(**overrides: object) -> DistillConfig:
    """The static paper-split protocol's Distill-CF: the authors' 500 steps, patience 150 and
    validation every 25 steps, minibatches of 1024 real rows, pooled Gumbel noise (0.19 s a step
    at μ = 500 on ML-1M, 2 cores); ``overrides`` change further fields (e.g. ``n_fake_users``)."""
    return DistillConfig(**({"steps": 500, "patience": 150, "batch_size": 1024, "eval_every": 25, "noise": "pooled"}
                            | overrides))


@dataclass(frozen=True)
class EASEConfig:
    """EASE (Steck, WWW 2019): the ridge grid searched on validation (one eigendecomposition
    serves the whole grid, :mod:`models.ease`). It spans the λ a 50-user sample needs (tens) to
    the full ML-1M's (hundreds to a few thousand)."""

    lams: Annotated[tuple[float, ...], Field(min_length=1, description="λ grid")] = (
        1.0, 10.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 3000.0)


@dataclass(frozen=True)
class ProxyConfig:
    """SVP-CF's proxy (:mod:`models.proxy_mf`): a small logistic matrix factorisation with biases,
    trained for a few epochs with uniformly sampled negatives; an interaction's score is its loss
    summed over the epochs (Coleman et al., ICLR 2020; Sachdeva et al., WSDM 2022, §4)."""

    factors: Annotated[int, Field(ge=0, description="latent factors (0: biases only)")] = 16
    epochs: Annotated[int, Field(ge=1, le=1000, description="passes over the interactions")] = 5
    lr: Annotated[float, Field(gt=0, description="Adam learning rate")] = 0.01
    batch_size: Annotated[int, Field(ge=1, description="interactions per update")] = 4096
    negatives: Annotated[int, Field(ge=0, description="uniform negatives per interaction")] = 1


@dataclass(frozen=True)
class SamplerConfig:
    """What the samplers of :mod:`models.samplers` need: SVP-CF's proxy and Distill-CF's settings
    (μ is the budget; the rest is the static protocol)."""

    proxy: Annotated[ProxyConfig, Field(description="SVP-CF's proxy model")] = Field(default_factory=ProxyConfig)
    distill: Annotated[DistillConfig, Field(description="Distill-CF (n_fake_users is set by the budget)")] = Field(
        default_factory=static_distill_config)


@dataclass(frozen=True)
class ExperimentConfig:
    """How the data-centric experiments (:mod:`models.experiments`) fit each model on a sample:
    hyper-parameters chosen on ``n_val_users`` users of the full validation split by
    ``select_by``; ∞-AE's λ grid is the union of the real-data grid and Distill-CF's inner grid,
    so a sample and a summary are fitted alike."""

    infinite_ae_lams: Annotated[tuple[float, ...], Field(min_length=1, description="∞-AE λ grid")] = (
        1e-5, 1e-3, 0.1, 1.0, 5.0, 20.0, 50.0, 100.0)
    n_val_users: Annotated[int | None, Field(ge=1, description="validation users for λ and early stopping; None: all")] = 1000
    select_by: Annotated[str, Field(description="validation metric key that picks λ")] = "ndcg@10"
    ease: Annotated[EASEConfig, Field(description="EASE")] = Field(default_factory=EASEConfig)
    mvae: Annotated[MVAEConfig, Field(description="MVAE (retention only)")] = Field(default_factory=MVAEConfig)
    sampling: Annotated[SamplerConfig, Field(description="the samplers")] = Field(default_factory=SamplerConfig)


@dataclass(frozen=True)
class DataGenieConfig:
    """DATA-GENIE small (:mod:`models.datagenie`): one ridge regression per sampler from data-set
    statistics and the budget to the retention (Kendall's τ)."""

    ridge: Annotated[float, Field(ge=0, description="ridge penalty on the standardised features")] = 1.0
