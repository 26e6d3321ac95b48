"""The static recommenders the data-centric experiments train on samples: one object each.

Each fits on training rows, picks its hyper-parameter (or early-stops) on a validation fold, and
returns a scorer of context rows. The set is the sampling paper's ranking-retention panel
(Sachdeva, Wu, McAuley, WSDM 2022, §5) cut to what Relay has: ∞-AE (:mod:`models.infinite_ae`),
EASE (:mod:`models.ease`), MVAE (:mod:`models.mvae`) and item popularity.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from types import ModuleType
from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from models import ease, infinite_ae
from models.configs import ExperimentConfig
from models.mvae import predict_scores, train_mvae

Scorer = Callable[[sp.csr_matrix], np.ndarray]
"""(m, d) context rows → (m, d) scores; the caller masks the context's own items."""


@dataclass(frozen=True)
class Fitted:
    """A trained recommender: its scorer and what it chose (e.g. ``{"lambda": 5.0}``)."""

    score: Scorer
    chosen: dict[str, float] = field(default_factory=dict)


class Recommender:
    """A recommender of the experiments: ``fit`` on rows, validated on (context, targets)."""

    name: ClassVar[str]

    def fit(self, train: sp.csr_matrix, *, validation: tuple[sp.csr_matrix, sp.csr_matrix], seed: int,
            config: ExperimentConfig) -> Fitted:
        """Train on (n, d) rows; ``validation`` is (context, targets), both (m, d)."""
        raise NotImplementedError


class _LambdaGrid(Recommender):
    """A closed-form model whose ridge λ is chosen on validation: ``module`` exposes
    ``fit_with_lambda_grid`` and ``score`` (:mod:`models.infinite_ae`, :mod:`models.ease`)."""

    module: ClassVar[ModuleType]

    def lams(self, config: ExperimentConfig) -> tuple[float, ...]:
        raise NotImplementedError

    def fit(self, train: sp.csr_matrix, *, validation: tuple[sp.csr_matrix, sp.csr_matrix], seed: int,
            config: ExperimentConfig) -> Fitted:
        model, lam, _ = self.module.fit_with_lambda_grid(
            train, *validation, lams=self.lams(config), n_val_users=config.n_val_users, seed=seed,
            select_by=config.select_by)
        return Fitted(score=partial(self.module.score, model), chosen={"lambda": lam})


class InfiniteAE(_LambdaGrid):
    """∞-AE, λ from ``config.infinite_ae_lams``."""

    name, module = "infinite_ae", infinite_ae

    def lams(self, config: ExperimentConfig) -> tuple[float, ...]:
        return config.infinite_ae_lams


class EASE(_LambdaGrid):
    """EASE, λ from ``config.ease.lams``."""

    name, module = "ease", ease

    def lams(self, config: ExperimentConfig) -> tuple[float, ...]:
        return config.ease.lams


class MVAE(Recommender):
    """MultVAE, early-stopped on validation nDCG@100 over ``config.n_val_users`` users."""

    name = "mvae"

    def fit(self, train: sp.csr_matrix, *, validation: tuple[sp.csr_matrix, sp.csr_matrix], seed: int,
            config: ExperimentConfig) -> Fitted:
        context, targets = (sp.csr_matrix(m) for m in validation)
        rows = np.flatnonzero(np.diff(targets.indptr) > 0)
        if config.n_val_users is not None and config.n_val_users < len(rows):
            rows = np.sort(np.random.default_rng(seed).choice(rows, config.n_val_users, replace=False))
        state = train_mvae(train, config=config.mvae, seed=seed, validation=(context[rows], targets[rows]))
        return Fitted(score=lambda c: predict_scores(state, c, exclude_context=False, device=config.mvae.device),
                      chosen={"epoch": float(state.best_epoch)})


class Popularity(Recommender):
    """Every user gets the items ranked by their (possibly fractional) training counts."""

    name = "popularity"

    def fit(self, train: sp.csr_matrix, *, validation: tuple[sp.csr_matrix, sp.csr_matrix], seed: int,
            config: ExperimentConfig) -> Fitted:
        counts = np.asarray(sp.csr_matrix(train).sum(axis=0), dtype=np.float32).ravel()
        return Fitted(score=lambda context: np.broadcast_to(counts, (context.shape[0], counts.size)).copy())


RECOMMENDERS: dict[str, Recommender] = {r.name: r for r in (InfiniteAE(), EASE(), MVAE(), Popularity())}
"""Every recommender by name, in report order."""


def get_recommender(name: str) -> Recommender:
    """The registered recommender called ``name``; ``ValueError`` listing the names otherwise."""
    if name not in RECOMMENDERS:
        raise ValueError(f"model must be one of {', '.join(RECOMMENDERS)}; got {name!r}")
    return RECOMMENDERS[name]
