"""Samplers: shrink a user × item matrix to a budget. One small object each, one literal registry.

The samplers the ∞-AE / Distill-CF paper compares (Sachdeva et al., NeurIPS 2022, §6, Fig. 1)
and the sampling paper builds (Sachdeva, Wu, McAuley, WSDM 2022, §3–4):

- ``interaction_rns``: a seeded uniform share of the interactions;
- ``user_rns``: seeded uniform users;
- ``head_user``: the most active users first (ties: lower row index);
- ``svp_cf``: users by the summed proxy loss of their interactions (:mod:`models.proxy_mf`);
- ``svp_cf_prop``: the same with each interaction's loss divided by its propensity p_ui = 1/w_i,
  w_i the inverse propensity of PSP (:func:`models.metrics.propensity_weights`), so that
  interactions with rare items count more (popularity bias);
- ``distill_cf``: μ synthetic users distilled from the data (:mod:`models.distill_cf`).

A sampler works in two steps so that one preparation serves a sweep of budgets:
:meth:`Sampler.prepare` ranks the units it keeps (users or interactions; the proxy trains once),
:meth:`Sampler.take` keeps a budget's worth. A :class:`Budget` counts users or interactions:

- a user budget n keeps exactly n users (user samplers), μ = n fake users (Distill-CF), or the
  matching share ``round(nnz·n / users)`` of the interactions (interaction samplers);
- an interaction budget m keeps exactly m interactions (interaction samplers), or users in rank
  order, skipping any whose row no longer fits, so that the kept rows hold at most m (user
  samplers: a greedy knapsack); Distill-CF takes user budgets only;
- a budget at or above what the data holds, or :data:`ALL`, keeps every non-empty row.

:func:`svp_cf_rows` is SVP-CF under an interaction budget: the real rows a coreset replays.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from models.configs import ProxyConfig, SamplerConfig
from models.distill_cf import distill, distill_rows
from models.metrics import propensity_weights
from models.proxy_mf import interaction_losses

Validation = tuple[sp.csr_matrix, sp.csr_matrix]


class Unit(enum.Enum):
    """What a sampler keeps."""

    USERS = "users"
    INTERACTIONS = "interactions"
    SYNTHETIC = "synthetic users"


@dataclass(frozen=True)
class Budget:
    """How much a sampler may keep: ``users`` or ``interactions`` (neither: everything).

    Attributes:
        users: rows (real or synthetic) to keep, ≥ 1.
        interactions: stored entries to keep, ≥ 1.
    """

    users: int | None = None
    interactions: int | None = None

    def __post_init__(self) -> None:
        if self.users is not None and self.interactions is not None:
            raise ValueError(f"a budget counts users or interactions, not both: {self}")
        for name, value in (("users", self.users), ("interactions", self.interactions)):
            if value is not None and value < 1:
                raise ValueError(f"budget {name} must be >= 1, got {value}")

    def covers(self, x: sp.csr_matrix) -> bool:
        """True when the budget keeps all of ``x`` (no budget, or one at least its size)."""
        if self.users is not None:
            return self.users >= n_users(x)
        return self.interactions is None or self.interactions >= x.nnz

    def interaction_count(self, x: sp.csr_matrix) -> int:
        """Interactions an interaction sampler keeps: m, or ``round(nnz·n / users)`` for n users."""
        if self.interactions is not None:
            return min(self.interactions, x.nnz)
        if self.users is None:
            return x.nnz
        return min(x.nnz, max(1, round(x.nnz * self.users / max(n_users(x), 1))))


ALL = Budget()
"""Keep everything."""


@dataclass(frozen=True)
class Sample:
    """What a sampler kept.

    Attributes:
        matrix: (k, d) training rows: the kept real rows (an interaction sampler's rows hold only
            the kept interactions), or synthetic rows.
        rows: (k,) indices of the kept real rows in the input, ascending; None for synthetic rows.
    """

    matrix: sp.csr_matrix
    rows: np.ndarray | None

    @property
    def n_interactions(self) -> int:
        return int(self.matrix.nnz)


@dataclass(frozen=True)
class Ranking:
    """A prepared ranking sampler: units best first.

    Attributes:
        x: (n, d) csr input (duplicates summed).
        order: user rows (non-empty only) or stored-entry positions, best first.
        unit: USERS or INTERACTIONS.
    """

    x: sp.csr_matrix
    order: np.ndarray
    unit: Unit


@dataclass(frozen=True)
class DistillJob:
    """A prepared Distill-CF: what :func:`models.distill_cf.distill` needs besides μ."""

    x: sp.csr_matrix
    validation: Validation | None
    config: SamplerConfig
    seed: int


def n_users(x: sp.csr_matrix) -> int:
    """Rows with at least one interaction."""
    return int(np.count_nonzero(np.diff(x.indptr)))


def _csr(x: sp.spmatrix) -> sp.csr_matrix:
    x = sp.csr_matrix(x, dtype=np.float32, copy=True)
    x.sum_duplicates()
    x.eliminate_zeros()
    return x


def everything(x: sp.csr_matrix) -> Sample:
    """The whole input as a sample (its non-empty rows)."""
    rows = np.flatnonzero(np.diff(x.indptr) > 0)
    return Sample(matrix=x[rows], rows=rows)


def keep_users(x: sp.csr_matrix, order: np.ndarray, budget: Budget) -> Sample:
    """Users in ``order`` within ``budget``: the first n, or greedily those whose rows fit m."""
    if budget.covers(x):
        return everything(x)
    if budget.users is not None:
        kept = order[: budget.users]
    else:
        sizes = np.diff(x.indptr)[order]
        room, fits = budget.interactions, np.zeros(len(order), dtype=bool)
        for position, size in enumerate(sizes):
            if size <= room:
                fits[position], room = True, room - size
                if room == 0:
                    break
        kept = order[fits]
    rows = np.sort(kept)
    return Sample(matrix=x[rows], rows=rows)


def keep_interactions(x: sp.csr_matrix, order: np.ndarray, budget: Budget) -> Sample:
    """The first ``budget.interaction_count(x)`` stored entries in ``order``; empty rows dropped."""
    if budget.covers(x):
        return everything(x)
    kept = np.zeros(x.nnz, dtype=bool)
    kept[order[: budget.interaction_count(x)]] = True
    masked = x.copy()
    masked.data = np.where(kept, x.data, 0).astype(x.dtype)
    masked.eliminate_zeros()
    return everything(masked)


def ranking_from_scores(x: sp.spmatrix, interaction_scores: np.ndarray) -> Ranking:
    """Users ranked by the sum of their interactions' scores (ties: lower row index).

    Args:
        x: (n, d) interactions.
        interaction_scores: (nnz,) one score per stored entry of ``csr_matrix(x)`` (summed
            duplicates), in storage order.
    """
    x = _csr(x)
    scores = np.asarray(interaction_scores, dtype=np.float64)
    if scores.shape != (x.nnz,):
        raise ValueError(f"interaction_scores must have shape ({x.nnz},), got {scores.shape}")
    per_user = np.bincount(np.repeat(np.arange(x.shape[0]), np.diff(x.indptr)), weights=scores,
                           minlength=x.shape[0])
    active = np.flatnonzero(np.diff(x.indptr) > 0)
    order = active[np.argsort(-per_user[active], kind="stable")]
    return Ranking(x=x, order=order, unit=Unit.USERS)


def inverse_propensity_scores(x: sp.csr_matrix, interaction_scores: np.ndarray) -> np.ndarray:
    """Scores divided by the interaction's propensity p_ui = 1/w_i (PSP's model; w_i from the
    item counts of ``x``, :func:`models.metrics.propensity_weights`): score_ui · w_i."""
    x = _csr(x)
    weights = propensity_weights(np.bincount(x.indices, minlength=x.shape[1]))
    return np.asarray(interaction_scores, dtype=np.float64) * weights[x.indices]


class Sampler:
    """A sampler: ``prepare`` ranks once, ``take`` keeps a budget; ``sample`` does both."""

    name: ClassVar[str]
    unit: ClassVar[Unit]

    def prepare(self, x: sp.spmatrix, *, seed: int, config: SamplerConfig = SamplerConfig(),
                validation: Validation | None = None) -> Ranking | DistillJob:
        """Rank the units of ``x`` (n, d); ``validation`` (context, targets) only for Distill-CF."""
        x = _csr(x)
        return Ranking(x=x, order=self.order(x, seed=seed, config=config), unit=self.unit)

    def order(self, x: sp.csr_matrix, *, seed: int, config: SamplerConfig) -> np.ndarray:
        """Units best first: non-empty user rows, or stored-entry positions."""
        raise NotImplementedError

    def take(self, prepared: Ranking | DistillJob, budget: Budget) -> Sample:
        """Keep ``budget``'s worth of the prepared ranking."""
        keep = keep_users if prepared.unit is Unit.USERS else keep_interactions
        return keep(prepared.x, prepared.order, budget)

    def sample(self, x: sp.spmatrix, budget: Budget, *, seed: int, config: SamplerConfig = SamplerConfig(),
               validation: Validation | None = None) -> Sample:
        """``take(prepare(x), budget)``."""
        return self.take(self.prepare(x, seed=seed, config=config, validation=validation), budget)


class InteractionRNS(Sampler):
    """A seeded uniform share of the interactions."""

    name, unit = "interaction_rns", Unit.INTERACTIONS

    def order(self, x: sp.csr_matrix, *, seed: int, config: SamplerConfig) -> np.ndarray:
        return np.random.default_rng(seed).permutation(x.nnz)


class UserRNS(Sampler):
    """Seeded uniform users."""

    name, unit = "user_rns", Unit.USERS

    def order(self, x: sp.csr_matrix, *, seed: int, config: SamplerConfig) -> np.ndarray:
        return np.random.default_rng(seed).permutation(np.flatnonzero(np.diff(x.indptr) > 0))


class HeadUser(Sampler):
    """The most active users first."""

    name, unit = "head_user", Unit.USERS

    def order(self, x: sp.csr_matrix, *, seed: int, config: SamplerConfig) -> np.ndarray:
        return ranking_from_scores(x, np.ones(x.nnz)).order


class SVPCF(Sampler):
    """Users by the summed proxy loss of their interactions."""

    name, unit = "svp_cf", Unit.USERS

    def order(self, x: sp.csr_matrix, *, seed: int, config: SamplerConfig) -> np.ndarray:
        return ranking_from_scores(x, interaction_losses(x, config=config.proxy, seed=seed)).order


class SVPCFProp(Sampler):
    """SVP-CF with each interaction's loss divided by its propensity."""

    name, unit = "svp_cf_prop", Unit.USERS

    def order(self, x: sp.csr_matrix, *, seed: int, config: SamplerConfig) -> np.ndarray:
        losses = interaction_losses(x, config=config.proxy, seed=seed)
        return ranking_from_scores(x, inverse_propensity_scores(x, losses)).order


class DistillCF(Sampler):
    """μ synthetic users (Distill-CF); validates on ``validation`` or, without it, on a seeded
    hold-out of the input's own rows (:func:`models.distill_cf.distill_rows`)."""

    name, unit = "distill_cf", Unit.SYNTHETIC

    def prepare(self, x: sp.spmatrix, *, seed: int, config: SamplerConfig = SamplerConfig(),
                validation: Validation | None = None) -> DistillJob:
        return DistillJob(x=_csr(x), validation=validation, config=config, seed=seed)

    def take(self, prepared: DistillJob, budget: Budget) -> Sample:
        if budget.interactions is not None:
            raise ValueError(f"distill_cf takes a user budget (μ fake users), got {budget}")
        if budget.covers(prepared.x):
            return everything(prepared.x)
        config = replace(prepared.config.distill, n_fake_users=budget.users)
        if prepared.validation is None:
            result = distill_rows(prepared.x, config=config, seed=prepared.seed)
        else:
            context, targets = prepared.validation
            result = distill(prepared.x, val_context=context, val_targets=targets, config=config, seed=prepared.seed)
        return Sample(matrix=result.summary, rows=None)


SAMPLERS: dict[str, Sampler] = {s.name: s for s in (InteractionRNS(), UserRNS(), HeadUser(), SVPCF(), SVPCFProp(),
                                                    DistillCF())}
"""Every sampler by name, in report order."""

SELECTORS: tuple[str, ...] = tuple(name for name, s in SAMPLERS.items() if s.unit is not Unit.SYNTHETIC)
"""The samplers that keep real users or interactions (all but the synthesising one): the ones
whose samples ranking retention compares."""


def get_sampler(name: str) -> Sampler:
    """The registered sampler called ``name``; ``ValueError`` listing the names otherwise."""
    if name not in SAMPLERS:
        raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}; got {name!r}")
    return SAMPLERS[name]


def svp_cf_rows(rows: sp.spmatrix, *, seed: int, interactions: int, proxy: ProxyConfig = ProxyConfig(),
                propensity: bool = False) -> np.ndarray:
    """The real rows SVP-CF keeps within an interaction budget (a coreset of a period).

    Trains the proxy on ``rows``, ranks them by summed interaction loss (divided by propensity if
    ``propensity``: SVP-CF-Prop) and keeps rows greedily in that order, skipping any that no
    longer fits, so that the kept rows hold at most ``interactions`` stored entries.

    Args:
        rows: (n, d) a period's rows (users × items).
        seed: seeds the proxy.
        interactions: the budget in stored entries (≥ 1).
        proxy: the proxy's hyper-parameters.
        propensity: rank by SVP-CF-Prop's scores instead.

    Returns:
        Ascending indices into ``rows`` of the kept rows.
    """
    sampler = SAMPLERS["svp_cf_prop" if propensity else "svp_cf"]
    kept = sampler.sample(rows, Budget(interactions=interactions), seed=seed, config=SamplerConfig(proxy=proxy))
    return kept.rows
