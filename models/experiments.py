"""The data-centric experiments: sample efficiency, noise robustness, ranking retention.

Static protocol (Sachdeva et al., NeurIPS 2022, §6): a sampler shrinks the training split to a
budget; each model trains on the sample, picks its hyper-parameter on the full validation split
(context = the users' full training rows) and is tested on the full test split (context = train +
validation rows, context items excluded from the ranking; PSP's propensities from the full
training split's item counts, so every cell is measured with the same ruler).

- :func:`run_sampler` fills one sampler's row of the grid model → budget → metrics, and
  :func:`assemble` joins the rows with the full-data reference into model → sampler → budget
  (paper Fig. 1). A budget is ``"all"``, a user count (``"500"``) or a share of the users
  (``"10%"``); a budget that covers the data is the full-data cell, fitted once per model.
- :func:`flip_items` adds the noise of paper Figs. 3–4: for every user, ``share`` of the item
  catalogue drawn uniformly without replacement has its entry flipped (0 ↔ 1). Contexts of the
  validation and test rankings stay clean: the experiment measures noise in what a model is
  trained on, and a test target can never be hidden by a flipped context entry.
- :func:`retention` is the sampling paper's measure (Sachdeva, Wu, McAuley, WSDM 2022, §5):
  Kendall's τ between the ranking of the models trained on a sample and on the full data, per
  metric, averaged over metrics.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import numpy as np
import scipy.sparse as sp
from scipy.stats import kendalltau

from models.configs import ExperimentConfig
from models.metrics import MetricAccumulator
from models.recommenders import Scorer, get_recommender
from models.samplers import ALL, Budget, Sample, everything, get_sampler, n_users

REPORT_KEYS = ("hr@10", "psp@10", "ndcg@10")
"""The metrics of every cell (paper Fig. 1: HR@10 and PSP@10; nDCG@10 as in Table 1)."""
FULL = "all"
Log = Callable[[str], None]
Grid = dict[str, dict[str, dict[str, dict[str, float]]]]
"""model → sampler → budget label → cell (``REPORT_KEYS`` ×100, ``users``, ``interactions``, seconds)."""


class StaticSplit(Protocol):
    """A static split as binary (n_users, n_items) csr matrices (``storage.paper_splits.PaperSplit``)."""

    train: sp.csr_matrix
    val: sp.csr_matrix
    test: sp.csr_matrix
    val_context: sp.csr_matrix
    test_context: sp.csr_matrix


def check_budget(label: str) -> str:
    """``label`` if it is ``"all"``, a positive user count or a share ``"p%"`` with 0 < p ≤ 100."""
    text = label.strip()
    try:
        value = float(text[:-1]) if text.endswith("%") else int(text) if text != FULL else 1
    except ValueError:
        value = 0
    if value <= 0 or (text.endswith("%") and value > 100):
        raise ValueError(f"budget must be 'all', a user count like '500' or a share like '10%', got {label!r}")
    return text


def user_budget(label: str, x: sp.csr_matrix) -> Budget:
    """The :class:`~models.samplers.Budget` a label means for rows ``x``."""
    text = check_budget(label)
    if text == FULL:
        return ALL
    if text.endswith("%"):
        return Budget(users=max(1, round(float(text[:-1]) / 100 * n_users(x))))
    return Budget(users=int(text))


def test_metrics(score: Scorer, split: StaticSplit, *, item_counts: np.ndarray, batch_size: int = 2048,
                 seed: int = 0) -> dict[str, float]:
    """Paper metrics of a scorer on the full test split, context (train + val) items excluded.

    Args:
        score: context rows → scores.
        split: the split (its ``test_context`` and ``test``).
        item_counts: (d,) the training counts PSP's propensities come from.
        batch_size: users scored at a time.
        seed: AUC negative-sampling seed.

    Returns:
        :class:`~models.metrics.MetricAccumulator`'s averages (×100; AUC a fraction).
    """
    acc = MetricAccumulator(n_items=split.test.shape[1], item_counts=item_counts, seed=seed)
    for lo in range(0, split.test.shape[0], batch_size):
        context = split.test_context[lo : lo + batch_size]
        scores = np.array(score(context), dtype=np.float32)
        scores[context.nonzero()] = -np.inf
        acc.update(scores, split.test[lo : lo + batch_size])
    return acc.result()


def evaluate_sample(sample: Sample, split: StaticSplit, *, models: Sequence[str], config: ExperimentConfig,
                    seed: int) -> dict[str, dict[str, float]]:
    """Train each model on the sample and test it: model → cell."""
    counts = np.asarray(split.train.sum(axis=0)).ravel()
    cells = {}
    for name in models:
        start = time.perf_counter()
        fitted = get_recommender(name).fit(sample.matrix, validation=(split.val_context, split.val), seed=seed,
                                           config=config)
        fit_seconds = time.perf_counter() - start
        values = test_metrics(fitted.score, split, item_counts=counts, seed=seed)
        cells[name] = {key: values[key] for key in REPORT_KEYS} | {
            "users": float(sample.matrix.shape[0]), "interactions": float(sample.n_interactions),
            "fit_seconds": fit_seconds, "test_seconds": time.perf_counter() - start - fit_seconds,
        } | {f"chosen_{k}": v for k, v in fitted.chosen.items()}
    return cells


def budget_share(label: str, x: sp.csr_matrix) -> float:
    """The share of the non-empty rows of ``x`` a budget label keeps (1 when it covers them)."""
    budget = user_budget(label, x)
    return 1.0 if budget.covers(x) else budget.users / n_users(x)


def training_rows(split: StaticSplit, *, noise: float, seed: int) -> sp.csr_matrix:
    """The rows the samplers see: the training split, with ``noise`` of the catalogue flipped per
    user (:func:`flip_items`) when ``noise`` > 0."""
    return split.train if noise == 0 else flip_items(split.train, share=noise, seed=seed)


def run_sampler(split: StaticSplit, sampler: str, *, budgets: Sequence[str], models: Sequence[str],
                config: ExperimentConfig, seed: int, noise: float = 0.0,
                log: Log | None = None) -> dict[str, dict[str, dict[str, float] | None]]:
    """One sampler's cells: model → budget label → cell, None where the budget covers the data.

    Args:
        split: the static split (validation and test are always the full, clean ones).
        sampler: a name in :data:`models.samplers.SAMPLERS`.
        budgets: budget labels (:func:`check_budget`).
        models: names in :data:`models.recommenders.RECOMMENDERS`.
        config: how the models and samplers fit.
        seed: seeds the sampler, the models and the noise.
        noise: share of the catalogue flipped per user in the training rows (:func:`training_rows`).
        log: called with one line per cell.
    """
    train = training_rows(split, noise=noise, seed=seed)
    chosen = get_sampler(sampler)
    start = time.perf_counter()
    prepared = chosen.prepare(train, seed=seed, config=config.sampling, validation=(split.val_context, split.val))
    prepare_seconds = time.perf_counter() - start
    out: dict[str, dict[str, dict[str, float] | None]] = {name: {} for name in models}
    for label in budgets:
        budget = user_budget(label, train)
        if budget.covers(train):
            for name in models:
                out[name][label] = None
            continue
        start = time.perf_counter()
        sample = chosen.take(prepared, budget)
        sample_seconds = time.perf_counter() - start + prepare_seconds
        for name, cell in evaluate_sample(sample, split, models=models, config=config, seed=seed).items():
            out[name][label] = cell | {"sample_seconds": sample_seconds, "budget_users": float(budget.users)}
            if log is not None:
                log(f"{sampler:>15} {label:>6} {name:>12}: " + " ".join(f"{k} {cell[k]:6.2f}" for k in REPORT_KEYS)
                    + f"  ({sample_seconds:.0f} s sample, {cell['fit_seconds']:.0f} s fit)")
        prepare_seconds = 0.0  # the preparation is paid once, by the first budget
    return out


def run_full(split: StaticSplit, *, models: Sequence[str], config: ExperimentConfig, seed: int,
             noise: float = 0.0) -> dict[str, dict[str, float]]:
    """The full-data reference: model → cell of training on all of :func:`training_rows`."""
    train = training_rows(split, noise=noise, seed=seed)
    cells = evaluate_sample(everything(train), split, models=models, config=config, seed=seed)
    return {name: cell | {"budget_users": cell["users"]} for name, cell in cells.items()}


def assemble(rows: Mapping[str, Mapping[str, Mapping[str, dict | None]]],
             full: Mapping[str, dict[str, float]]) -> Grid:
    """Join :func:`run_sampler` rows (sampler → model → budget) and the full-data cells into
    model → sampler → budget; a covering budget's cell is the full-data cell, which also appears
    under every sampler as the budget ``"all"`` (the reference every curve ends at)."""
    grid: Grid = {model: {} for model in full}
    for sampler, per_model in rows.items():
        for model, cells in per_model.items():
            filled = {label: dict(full[model]) if cell is None else cell for label, cell in cells.items()}
            grid[model][sampler] = filled | {FULL: dict(full[model])}
    return grid


def run_grid(split: StaticSplit, *, samplers: Sequence[str], budgets: Sequence[str], models: Sequence[str],
             config: ExperimentConfig, seed: int, noise: float = 0.0, full: dict | None = None,
             log: Log | None = None) -> Grid:
    """The full-data reference (``full``, or fitted here) and every sampler's cells, in one
    process (:func:`assemble`)."""
    full = full or run_full(split, models=models, config=config, seed=seed, noise=noise)
    return assemble({s: run_sampler(split, s, budgets=budgets, models=models, config=config, seed=seed, noise=noise,
                                    log=log) for s in samplers}, full)


def flip_items(x: sp.spmatrix, *, share: float, seed: int) -> sp.csr_matrix:
    """Flip ``round(share·d)`` uniformly drawn entries of every row of a binary (n, d) matrix.

    Args:
        x: binary rows.
        share: noise level in [0, 1] (5% noise: 0.05).
        seed: seeds the draws (row by row, in row order).

    Returns:
        (n, d) binary float32 csr: x XOR the flip mask.
    """
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"share must be in [0, 1], got {share}")
    x = sp.csr_matrix(x, dtype=np.float32)
    n, d = x.shape
    k = round(share * d)
    rng = np.random.default_rng(seed)
    cols = np.concatenate([rng.choice(d, k, replace=False) for _ in range(n)]) if k else np.zeros(0, np.int64)
    flips = sp.csr_matrix((np.ones(n * k, np.float32), cols, np.arange(n + 1) * k), shape=(n, d))
    out = sp.csr_matrix((x > 0).astype(np.float32) + flips)
    out.data = np.mod(out.data, 2.0)
    out.eliminate_zeros()
    return out


def noise_drops(grids: Mapping[str, Grid], reference: Mapping[str, dict[str, float]]) -> dict:
    """noise → model → sampler → budget → {metric: 100·(value − clean full) / clean full}.

    Args:
        grids: noise label → :data:`Grid` trained on noisy rows.
        reference: model → the cell of training on the full clean data.
    """
    return {noise: {model: {sampler: {label: {k: 100.0 * (cell[k] - reference[model][k]) / reference[model][k]
                                               for k in REPORT_KEYS}
                                      for label, cell in cells.items()}
                            for sampler, cells in per_sampler.items()}
                    for model, per_sampler in grid.items()}
            for noise, grid in grids.items()}


def retention(grid: Grid, *, metrics: Sequence[str] = REPORT_KEYS) -> dict[str, dict[str, dict[str, float]]]:
    """Kendall's τ (τ-b) of the models' order on each sample against their order on the full data.

    Args:
        grid: model → sampler → budget → cell; the full-data cells are the ``"all"`` budget's
            (present under every sampler, e.g. from :func:`assemble`).
        metrics: the metrics whose orders are compared.

    Returns:
        sampler → budget → ``{"tau": mean over metrics, "tau_<metric>": …}``; a metric on which
        every model ties on one side has no order, and its τ counts as 0.
    """
    models = list(grid)
    if len(models) < 2:
        raise ValueError(f"retention needs at least two models, got {models}")
    samplers = list(grid[models[0]])
    out: dict[str, dict[str, dict[str, float]]] = {}
    for sampler in samplers:
        cells = {m: grid[m][sampler] for m in models}
        if any(FULL not in per_budget for per_budget in cells.values()):
            raise ValueError(f"sampler {sampler!r} lacks the {FULL!r} budget to compare with")
        out[sampler] = {}
        for label in cells[models[0]]:
            if label == FULL:
                continue
            taus = {}
            for key in metrics:
                tau = kendalltau([cells[m][FULL][key] for m in models], [cells[m][label][key] for m in models]).statistic
                taus[f"tau_{key}"] = 0.0 if np.isnan(tau) else float(tau)
            out[sampler][label] = {"tau": float(np.mean(list(taus.values())))} | taus
    return out
