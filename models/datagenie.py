"""DATA-GENIE, small: predict which sampler keeps a data set's model ranking best.

Sachdeva, Wu, McAuley, *On Sampling Collaborative Filtering Datasets*, WSDM 2022, §6: an oracle
that, given a data set and a budget, predicts each sampler's ranking retention (Kendall's τ of
:func:`models.experiments.retention`) so that a practitioner can pick the sampler without
training every model on every sample. The paper learns it from a graph encoding of each data
set; this small version regresses τ on cheap statistics of the training matrix (sizes, density,
activity and popularity skew; :func:`dataset_statistics`) and the budget's share of users, with
one ridge regression per sampler on standardised features (:func:`fit`).

:func:`leave_one_dataset_out` is the evaluation: for every data set, fit on the others, and for
each of its budgets pick the sampler with the highest predicted τ; a pick is right when its
measured τ equals the best measured τ at that budget (ties count as right). The baseline always
picks user random sampling.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from models.configs import DataGenieConfig

STATISTICS = ("log_users", "log_items", "log_interactions", "log_density", "log_mean_user_degree",
              "user_gini", "item_gini")
"""The data-set statistics the predictor reads (decimal logs of sizes; Gini coefficients of skew)."""
BASELINE = "user_rns"


@dataclass(frozen=True)
class Observation:
    """One measured retention: ``sampler`` at ``budget`` (a ``share`` of the users) on ``dataset``."""

    dataset: str
    sampler: str
    budget: str
    share: float
    tau: float
    statistics: dict[str, float]


@dataclass(frozen=True)
class Genie:
    """Fitted predictors: per sampler, feature means/scales and ridge coefficients (intercept first)."""

    mean: np.ndarray
    scale: np.ndarray
    coefficients: dict[str, np.ndarray]


def gini(counts: np.ndarray) -> float:
    """Gini coefficient of non-negative counts: 0 when all are equal, → 1 when one holds all."""
    values = np.sort(np.asarray(counts, dtype=np.float64))
    if values.size == 0 or values.sum() == 0:
        return 0.0
    ranks = np.arange(1, values.size + 1)
    return float((2 * ranks - values.size - 1) @ values / (values.size * values.sum()))


def dataset_statistics(x: sp.spmatrix) -> dict[str, float]:
    """The :data:`STATISTICS` of a (users, items) interaction matrix (non-empty rows and columns)."""
    x = sp.csr_matrix(x)
    user_degree = np.diff(x.indptr)
    item_degree = np.bincount(x.indices, minlength=x.shape[1])
    users, items = int(np.count_nonzero(user_degree)), int(np.count_nonzero(item_degree))
    if x.nnz == 0:
        raise ValueError("x has no interactions")
    return {
        "log_users": float(np.log10(users)),
        "log_items": float(np.log10(items)),
        "log_interactions": float(np.log10(x.nnz)),
        "log_density": float(np.log10(x.nnz / (users * items))),
        "log_mean_user_degree": float(np.log10(x.nnz / users)),
        "user_gini": gini(user_degree[user_degree > 0]),
        "item_gini": gini(item_degree[item_degree > 0]),
    }


def features(statistics: dict[str, float], share: float) -> np.ndarray:
    """Feature vector: the statistics, the budget's share of users and its decimal log."""
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], got {share}")
    return np.array([statistics[k] for k in STATISTICS] + [share, np.log10(share)])


def fit(observations: Sequence[Observation], *, config: DataGenieConfig = DataGenieConfig()) -> Genie:
    """One ridge regression per sampler, τ ~ standardised features (the intercept is not penalised)."""
    if not observations:
        raise ValueError("fit needs observations")
    all_features = np.stack([features(o.statistics, o.share) for o in observations])
    mean, scale = all_features.mean(axis=0), all_features.std(axis=0)
    scale[scale == 0] = 1.0
    coefficients = {}
    for sampler in dict.fromkeys(o.sampler for o in observations):
        mine = [o for o in observations if o.sampler == sampler]
        design = np.column_stack([np.ones(len(mine)),
                                  (np.stack([features(o.statistics, o.share) for o in mine]) - mean) / scale])
        penalty = config.ridge * np.eye(design.shape[1])
        penalty[0, 0] = 0.0
        coefficients[sampler] = np.linalg.solve(design.T @ design + penalty, design.T @ np.array([o.tau for o in mine]))
    return Genie(mean=mean, scale=scale, coefficients=coefficients)


def predict(genie: Genie, statistics: dict[str, float], share: float) -> dict[str, float]:
    """Predicted τ of every sampler the genie knows, for a data set and a budget share."""
    z = np.concatenate([[1.0], (features(statistics, share) - genie.mean) / genie.scale])
    return {sampler: float(z @ coef) for sampler, coef in genie.coefficients.items()}


def leave_one_dataset_out(observations: Sequence[Observation], *, config: DataGenieConfig = DataGenieConfig(),
                          baseline: str = BASELINE) -> dict:
    """Pick a sampler for every (data set, budget) with a genie fitted on the other data sets.

    Returns:
        ``{"picks": [{dataset, budget, picked, best, tau_picked, tau_best, tau_baseline,
        picked_right, baseline_right}], "accuracy", "baseline_accuracy", "mean_tau_picked",
        "mean_tau_baseline", "mean_tau_best"}``.
    """
    datasets = list(dict.fromkeys(o.dataset for o in observations))
    if len(datasets) < 3:
        raise ValueError(f"leave-one-data-set-out needs at least 3 data sets, got {datasets}")
    picks = []
    for held_out in datasets:
        genie = fit([o for o in observations if o.dataset != held_out], config=config)
        mine = [o for o in observations if o.dataset == held_out]
        for budget in dict.fromkeys(o.budget for o in mine):
            measured = {o.sampler: o.tau for o in mine if o.budget == budget}
            if baseline not in measured:
                raise ValueError(f"{held_out} at {budget} has no {baseline!r} retention to compare with")
            first = next(o for o in mine if o.budget == budget)
            predicted = predict(genie, first.statistics, first.share)
            picked = max((s for s in measured if s in predicted), key=lambda s: predicted[s])
            best = max(measured, key=lambda s: measured[s])
            picks.append({"dataset": held_out, "budget": budget, "picked": picked, "best": best,
                          "tau_picked": measured[picked], "tau_best": measured[best],
                          "tau_baseline": measured[baseline],
                          "picked_right": measured[picked] >= measured[best] - 1e-9,
                          "baseline_right": measured[baseline] >= measured[best] - 1e-9})
    return {"picks": picks,
            "accuracy": float(np.mean([p["picked_right"] for p in picks])),
            "baseline_accuracy": float(np.mean([p["baseline_right"] for p in picks])),
            "mean_tau_picked": float(np.mean([p["tau_picked"] for p in picks])),
            "mean_tau_baseline": float(np.mean([p["tau_baseline"] for p in picks])),
            "mean_tau_best": float(np.mean([p["tau_best"] for p in picks]))}


def observations_from(dataset: str, retention: dict[str, dict[str, dict[str, float]]],
                      shares: dict[str, float], statistics: dict[str, float]) -> list[Observation]:
    """Observations of one data set from :func:`models.experiments.retention`'s output.

    Args:
        dataset: its name.
        retention: sampler → budget → {"tau": …}.
        shares: budget → share of the users it keeps.
        statistics: :func:`dataset_statistics` of its training matrix.
    """
    return [Observation(dataset=dataset, sampler=sampler, budget=budget, share=shares[budget], tau=cell["tau"],
                        statistics=statistics)
            for sampler, per_budget in retention.items() for budget, cell in per_budget.items()]
