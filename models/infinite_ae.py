"""∞-AE: kernel ridge regression with the NTK of an infinitely wide autoencoder.

Sachdeva, Dhaliwal, Wu, McAuley, *Infinite Recommendation Networks*, NeurIPS 2022, §3 (Eq. 2):
kernel ridge regression (:mod:`models.krr`) of the training rows X (n, d) on themselves, with
K = Θ(X, X), α = (K + λ·(tr K / n)·I)⁻¹ X and scores(c) = Θ(c, X)·α for context rows c. λ is
chosen on validation from a small grid.

Speed (docs/architecture.md §4): the kernel is built from one Gram product; λ selection costs one Cholesky
per λ plus a solve with only the sampled validation rows as right-hand sides,
``scores_S = (K_S (K + λ′I)⁻¹) X = ((K + λ′I)⁻¹ K_Sᵀ)ᵀ X``, and the factor of the chosen λ is
reused for the final α. (One eigendecomposition of K would serve the whole grid, but measured on
ML-1M, n = 6040, float32, 2 cores: eigh 39 s vs Cholesky 1–2 s, so per-λ Cholesky wins.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from models import krr
from models.metrics import metric_key, parse_metric_key, ranking_metrics
from models.ntk import Rows, gram_blocks, ntk_from_gram, ntk_matrix, squared_norms, to_dense


@dataclass(frozen=True)
class InfiniteAE:
    """A fitted ∞-AE.

    Attributes:
        x_train: (n, d) csr training rows the kernel is taken against.
        alpha: (n, d) dual coefficients (K + λ·tr/n·I)⁻¹ X.
        lam: λ used.
        depth: ReLU layers of the network whose NTK is used.
    """

    x_train: sp.csr_matrix
    alpha: np.ndarray
    lam: float
    depth: int


def sample_users(x_train: Rows, *, n_users: int | None, seed: int = 0) -> sp.csr_matrix:
    """A seeded uniform sample of ``n_users`` non-empty training rows (the authors' user budget for
    large user counts: the kernel is n × n). None, or a budget ≥ the non-empty rows, keeps them all.

    Returns:
        (≤ n_users, d) csr rows in their original order (empty rows dropped).
    """
    x = sp.csr_matrix(x_train)
    rows = np.flatnonzero(np.diff(x.indptr) > 0)
    if n_users is not None and n_users < len(rows):
        if n_users < 1:
            raise ValueError(f"n_users must be >= 1, got {n_users}")
        rows = np.sort(np.random.default_rng(seed).choice(rows, size=n_users, replace=False))
    return x[rows]


def fit(
    x_train: Rows, *, lam: float, depth: int = 1, dtype: np.dtype | type = np.float32,
    n_train_users: int | None = None, seed: int = 0,
) -> InfiniteAE:
    """Fit the ∞-AE on training rows.

    Args:
        x_train: (n, d) binary rows, csr or dense.
        lam: dimensionless ridge λ (> 0); the ridge is λ·tr(K)/n.
        depth: NTK depth (ReLU layers), ≥ 1.
        dtype: float32 (fast) or float64.
        n_train_users: fit on a seeded uniform sample of this many non-empty rows (``sample_users``);
            None: all rows (empty rows included, they are harmless).
        seed: sampling seed.

    Returns:
        The fitted model.
    """
    x = sp.csr_matrix(x_train if n_train_users is None else sample_users(x_train, n_users=n_train_users, seed=seed),
                      dtype=dtype)
    kernel = ntk_matrix(x, x, depth=depth, dtype=dtype)
    alpha = krr.solve(krr.cholesky(kernel, krr.ridge(kernel, lam)), to_dense(x, np.dtype(dtype)))
    return InfiniteAE(x_train=x, alpha=alpha, lam=float(lam), depth=depth)


def score(model: InfiniteAE, context: Rows, *, batch_size: int = 2048) -> np.ndarray:
    """Scores ``Θ(context, X)·α`` for context rows, computed in row batches.

    Args:
        model: fitted ∞-AE.
        context: (m, d) rows (csr or dense) whose items feed the kernel.
        batch_size: context rows per batch.

    Returns:
        (m, d) scores in α's dtype. The caller masks already-seen items before ranking.
    """
    dtype = model.alpha.dtype
    sq_train = squared_norms(model.x_train, dtype)
    sq_ctx = squared_norms(context, dtype)
    out = np.empty((context.shape[0], model.alpha.shape[1]), dtype=dtype)
    for start, g in gram_blocks(context, model.x_train, dtype=dtype, block_rows=batch_size):
        stop = start + len(g)
        k = ntk_from_gram(g, sq_ctx[start:stop], sq_train, n_features=model.x_train.shape[1], depth=model.depth)
        out[start:stop] = k @ model.alpha
    return out


def _validation_rows(n: int, n_users: int | None, seed: int) -> np.ndarray:
    if n_users is None or n_users >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=n_users, replace=False))


def _validation_keys(select_by: str) -> tuple[str, ...]:
    """The rank metrics reported per λ: nDCG and HR at 10 and 100, plus ``select_by``."""
    keys = [metric_key(name, k) for k in (10, 100) for name in ("ndcg", "hr")]
    parse_metric_key(select_by)
    return tuple(keys if select_by in keys else [*keys, select_by])


def _hill_climb(n: int, better: Callable[[int, int], bool], evaluate: Callable[[int], None]) -> None:
    """Visit indices of a sorted grid from the middle towards the better neighbour (left first),
    stopping at a local maximum; ``evaluate`` is called once per visited index."""
    i = n // 2
    evaluate(i)
    while True:
        for j in (i - 1, i + 1):
            if 0 <= j < n:
                evaluate(j)
                if better(j, i):
                    i = j
                    break
        else:
            return


def fit_with_lambda_grid(
    x_train: Rows,
    val_context: Rows,
    val_targets: sp.spmatrix,
    *,
    lams: Sequence[float] = (1, 5, 20, 50, 100),
    depth: int = 1,
    dtype: np.dtype | type = np.float32,
    n_val_users: int | None = None,
    seed: int = 0,
    select_by: str = "ndcg@10",
    unimodal: bool = False,
    n_train_users: int | None = None,
) -> tuple[InfiniteAE, float, dict[float, dict[str, float]]]:
    """Fit the ∞-AE, choosing λ on validation.

    For each λ tried, validation users are scored with their ``val_context`` items masked (set to
    −inf) and ranked (:func:`models.metrics.ranking_metrics`); the λ with the best ``select_by``
    wins (the smaller λ on a tie) and its Cholesky factor is reused for the final α.

    Args:
        x_train: (n, d) training rows.
        val_context: (m, d) validation input rows (in the paper protocol, the train rows).
        val_targets: (m, d) binary validation targets; rows without targets are skipped.
        lams: λ grid.
        depth: NTK depth.
        dtype: float32 or float64.
        n_val_users: evaluate on a seeded uniform sample of this many validation rows
            (None: all); users without targets are dropped before sampling.
        seed: sampling seed.
        select_by: rank metric key to maximise, e.g. "ndcg@10" or "hr@100".
        unimodal: assume the validation metric is unimodal in λ and hill-climb the sorted grid
            from its middle (left neighbour first) instead of trying every λ: typically 3 of 5
            Cholesky factorisations. Finds the grid's best λ whenever the assumption holds.
        n_train_users: build the kernel on a seeded sample of this many non-empty training rows
            (``sample_users``); None: all.

    Returns:
        (model, chosen λ, {λ: validation nDCG/HR@10/100 and ``select_by`` (×100)} for the λs tried).
    """
    dtype = np.dtype(dtype)
    x = sp.csr_matrix(x_train if n_train_users is None else sample_users(x_train, n_users=n_train_users, seed=seed),
                      dtype=dtype)
    val_context, val_targets = sp.csr_matrix(val_context), sp.csr_matrix(val_targets)
    if val_context.shape != val_targets.shape or val_context.shape[1] != x.shape[1]:
        raise ValueError(f"val_context {val_context.shape} and val_targets {val_targets.shape} must be (m, {x.shape[1]})")
    if not lams:
        raise ValueError("lams must not be empty")
    grid = sorted(float(lam) for lam in lams)
    has_targets = np.flatnonzero(np.diff(val_targets.indptr) > 0)
    rows = has_targets[_validation_rows(len(has_targets), n_val_users, seed)]
    ctx, tgt = val_context[rows], val_targets[rows]
    x_dense = to_dense(x, dtype)
    kernel = ntk_matrix(x, x, depth=depth, dtype=dtype)
    k_val_t = np.ascontiguousarray(ntk_matrix(ctx, x, depth=depth, dtype=dtype).T)  # (n, s)
    seen = ctx.toarray() > 0
    keys = _validation_keys(select_by)
    results: dict[float, dict[str, float]] = {}
    factors: dict[float, tuple] = {}

    def key(lam: float) -> tuple[float, float]:
        return results[lam][select_by], -lam  # the smaller λ wins a tie

    def evaluate(i: int) -> None:
        """Validation metrics of grid[i]; keeps the factor only while it is the best so far."""
        lam = grid[i]
        if lam in results:
            return
        factor = krr.cholesky(kernel, krr.ridge(kernel, lam))
        scores = krr.solve(factor, k_val_t).T @ x_dense  # = Θ(ctx, X)·α restricted to the sample
        scores[seen] = -np.inf
        results[lam] = ranking_metrics(scores, tgt, keys)
        if all(key(lam) > key(other) for other in factors):
            factors.clear()
            factors[lam] = factor

    if unimodal:
        _hill_climb(len(grid), lambda j, i: key(grid[j]) > key(grid[i]), evaluate)
    else:
        for i in range(len(grid)):
            evaluate(i)
    lam_best, factor = next(iter(factors.items()))
    alpha = krr.solve(factor, x_dense)
    return InfiniteAE(x_train=x, alpha=alpha, lam=lam_best, depth=depth), lam_best, results
