"""EASE: the factored closed form against Steck's direct formula, and λ chosen on validation."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from models import ease
from models.metrics import ranking_metrics


def direct_weights(x: np.ndarray, lam: float) -> np.ndarray:
    """Steck (WWW 2019), Eq. 8, literally: P = (XᵀX + λI)⁻¹, B = I − P·diagMat(1 ⊘ diag P)."""
    p = np.linalg.inv(x.T @ x + lam * np.eye(x.shape[1]))
    b = np.eye(x.shape[1]) - p / np.diag(p)
    np.fill_diagonal(b, 0.0)
    return b


def random_rows(n: int, d: int, density: float, seed: int) -> sp.csr_matrix:
    return sp.random(n, d, density=density, random_state=seed, format="csr", data_rvs=np.ones).astype(np.float32)


@pytest.mark.parametrize(("n", "d"), [(40, 25), (8, 25)])  # eigenproblem of XᵀX (n ≥ d) and of XXᵀ (n < d)
@pytest.mark.parametrize("lam", [0.5, 20.0])
def test_fit_matches_the_direct_formula(n: int, d: int, lam: float) -> None:
    x = random_rows(n, d, 0.3, seed=n)
    model = ease.fit(x, lam=lam)
    np.testing.assert_allclose(model.weights, direct_weights(x.toarray().astype(np.float64), lam), atol=2e-5)
    assert np.all(np.diagonal(model.weights) == 0.0)
    np.testing.assert_allclose(ease.score(model, x[:3]), x[:3].toarray() @ model.weights, rtol=1e-5, atol=1e-6)


def test_fractional_rows_and_empty_items_are_fine() -> None:
    x = random_rows(30, 12, 0.3, seed=1).toarray() * 0.5
    x[:, 4] = 0.0  # an item nobody holds: its weights are zero (up to rounding)
    model = ease.fit(sp.csr_matrix(x), lam=3.0)
    np.testing.assert_allclose(model.weights, direct_weights(x, 3.0), atol=2e-5)
    assert np.abs(model.weights[4]).max() < 1e-12 and np.abs(model.weights[:, 4]).max() < 1e-12


def test_lambda_grid_picks_the_best_validation_lambda() -> None:
    x = random_rows(60, 30, 0.25, seed=3)
    targets = random_rows(60, 30, 0.05, seed=4)
    targets = sp.csr_matrix(targets - targets.multiply(x))
    lams = (0.1, 5.0, 100.0)
    model, lam, results = ease.fit_with_lambda_grid(x, x, targets, lams=lams)
    expected = {}
    for value in lams:
        scores = ease.score(ease.fit(x, lam=value), x).astype(np.float64)
        scores[x.toarray() > 0] = -np.inf
        expected[value] = ranking_metrics(scores, targets, ("ndcg@10",))["ndcg@10"]
    assert results.keys() == expected.keys()
    for value in lams:
        assert results[value]["ndcg@10"] == pytest.approx(expected[value], abs=1e-6)
    assert lam == max(lams, key=lambda v: (expected[v], -v))
    np.testing.assert_allclose(model.weights, ease.fit(x, lam=lam).weights, atol=1e-6)


def test_bad_arguments_name_the_problem() -> None:
    x = random_rows(10, 6, 0.4, seed=0)
    with pytest.raises(ValueError, match="lam"):
        ease.fit(x, lam=0.0)
    with pytest.raises(ValueError, match="lams"):
        ease.fit_with_lambda_grid(x, x, x, lams=())
    with pytest.raises(ValueError, match="val_context"):
        ease.fit_with_lambda_grid(x, x[:, :5], x[:, :5], lams=(1.0,))
    with pytest.raises(ValueError, match="item columns"):
        ease.score(ease.fit(x, lam=1.0), x[:, :5])
