"""EASE: the closed-form item-item autoencoder, one ridge λ chosen on validation.

Steck, *Embarrassingly Shallow Autoencoders for Sparse Data*, WWW 2019, Eq. 8: with the Gram
matrix G = XᵀX of the training rows X (n, d) and P = (G + λI)⁻¹,

    B = I − P·diagMat(1 ⊘ diag(P)),        scores(c) = c·B,

the least-squares item-item weights under the constraint diag(B) = 0.

The λ grid shares one thin eigendecomposition G = W·diag(s)·Wᵀ (W: d × r, r = min(n, d); taken
from the n × n matrix XXᵀ when n < d, so a 50-user sample costs a 50 × 50 eigenproblem), since

    P(λ) = W·diag(1/(s + λ) − 1/λ)·Wᵀ + I/λ

holds for both r = d and r < d (on the null space of G, P = I/λ), and float64 keeps the
difference accurate (a relative 1e-16/λ against entries of order 1/(s + λ)). Every λ costs one product
with the validation contexts, ``c·B = c − (c·P)·diag(1 ⊘ diag P)`` in O(m·d·r), never a d × d
inverse; only the chosen λ's B is formed (O(d²·r)), and a sparse context scores in O(nnz·d).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from models.metrics import ranking_metrics

Rows = sp.spmatrix | np.ndarray


@dataclass(frozen=True)
class EASE:
    """A fitted EASE model.

    Attributes:
        weights: (d, d) float32 item-item weights B, zero diagonal.
        lam: the ridge λ.
    """

    weights: np.ndarray
    lam: float


@dataclass(frozen=True)
class _Eigen:
    """Thin eigendecomposition of G = XᵀX: (d, r) orthonormal W and (r,) eigenvalues s > 0."""

    basis: np.ndarray
    values: np.ndarray


def _gram_eigen(x: sp.csr_matrix) -> _Eigen:
    """G = W·diag(s)·Wᵀ over the eigenvalues > 1e-9·max, in float64, from the smaller Gram side."""
    x = sp.csr_matrix(x, dtype=np.float64)
    if x.shape[0] < x.shape[1]:  # XXᵀ = U·diag(s)·Uᵀ  ⇒  W = Xᵀ·U·diag(s)^-½
        s, u = np.linalg.eigh((x @ x.T).toarray())
    else:
        s, u = np.linalg.eigh((x.T @ x).toarray())
    keep = s > 1e-9 * max(float(s.max(initial=0.0)), 1e-300)
    s, u = s[keep], u[:, keep]
    return _Eigen(basis=np.asarray(x.T @ u) / np.sqrt(s) if x.shape[0] < x.shape[1] else u, values=s)


def _shrink(eig: _Eigen, lam: float) -> np.ndarray:
    """a = 1/(s + λ) − 1/λ, so that P(λ) = W·diag(a)·Wᵀ + I/λ (r = d or not)."""
    return 1.0 / (eig.values + lam) - 1.0 / lam


def _context_times_b(eig: _Eigen, lam: float, context: np.ndarray, projected: np.ndarray) -> np.ndarray:
    """c·B from dense c (m, d) and c·W (m, r): c − (c·P)·diag(1 ⊘ diag P)."""
    a = _shrink(eig, lam)
    inverse_diagonal = (eig.basis**2) @ a + 1.0 / lam
    return context - ((projected * a) @ eig.basis.T + context / lam) / inverse_diagonal


def _model(eig: _Eigen, lam: float) -> EASE:
    """B = I − P·diagMat(1 ⊘ diag P) for one λ (zero diagonal)."""
    p = (eig.basis * _shrink(eig, lam)) @ eig.basis.T
    p.flat[:: p.shape[0] + 1] += 1.0 / lam
    weights = -(p / np.diagonal(p))
    np.fill_diagonal(weights, 0.0)
    return EASE(weights=weights.astype(np.float32), lam=float(lam))


def fit(x_train: Rows, *, lam: float) -> EASE:
    """Fit EASE with ridge ``lam`` (> 0) on (n, d) rows (binary or fractional)."""
    if not lam > 0:
        raise ValueError(f"lam must be > 0, got {lam}")
    return _model(_gram_eigen(sp.csr_matrix(x_train)), lam)


def score(model: EASE, context: Rows) -> np.ndarray:
    """Scores c·B for (m, d) context rows, float32 (m, d); the caller masks seen items."""
    context = sp.csr_matrix(context, dtype=np.float32)
    if context.shape[1] != model.weights.shape[0]:
        raise ValueError(f"context has {context.shape[1]} item columns, the model {model.weights.shape[0]}")
    return np.asarray(context @ model.weights)


def fit_with_lambda_grid(
    x_train: Rows,
    val_context: Rows,
    val_targets: sp.spmatrix,
    *,
    lams: Sequence[float],
    n_val_users: int | None = None,
    seed: int = 0,
    select_by: str = "ndcg@10",
) -> tuple[EASE, float, dict[float, dict[str, float]]]:
    """Fit EASE, choosing λ by ``select_by`` on validation (the smaller λ wins a tie).

    Args:
        x_train: (n, d) training rows.
        val_context: (m, d) rows the validation targets are ranked from (their items excluded).
        val_targets: (m, d) binary validation targets; rows without targets are skipped.
        lams: λ grid (> 0).
        n_val_users: rank a seeded sample of this many validation rows with targets (None: all).
        seed: sampling seed.
        select_by: rank-metric key, e.g. "ndcg@10".

    Returns:
        (model with the chosen λ, λ, {λ: {select_by: value ×100}}).
    """
    if not lams or min(lams) <= 0:
        raise ValueError(f"lams must be a non-empty grid of positive values, got {tuple(lams)}")
    x = sp.csr_matrix(x_train)
    val_context, val_targets = sp.csr_matrix(val_context), sp.csr_matrix(val_targets)
    if val_context.shape != val_targets.shape or val_context.shape[1] != x.shape[1]:
        raise ValueError(f"val_context {val_context.shape} and val_targets {val_targets.shape} "
                         f"must be (m, {x.shape[1]})")
    eig = _gram_eigen(x)
    rows = np.flatnonzero(np.diff(val_targets.indptr) > 0)
    if n_val_users is not None and n_val_users < len(rows):
        rows = np.sort(np.random.default_rng(seed).choice(rows, n_val_users, replace=False))
    context = val_context[rows].toarray().astype(np.float64)
    projected = context @ eig.basis
    seen = context > 0
    results: dict[float, dict[str, float]] = {}
    for lam in sorted(float(v) for v in lams):
        scores = _context_times_b(eig, lam, context, projected)
        scores[seen] = -np.inf
        results[lam] = ranking_metrics(scores, val_targets[rows], (select_by,))
    best = max(results, key=lambda lam: (results[lam][select_by], -lam))
    return _model(eig, best), best, results
