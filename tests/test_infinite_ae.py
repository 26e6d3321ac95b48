"""models.infinite_ae: closed form, λ grid, numerical safety."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from helpers import paper_split
from models.infinite_ae import fit, fit_with_lambda_grid, sample_users, score
from models.krr import cholesky
from models.metrics import evaluate, ranking_metrics
from models.ntk import ntk_matrix


def _data(seed: int = 0, n: int = 120, d: int = 150) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    taste = rng.random((n, 4)) @ rng.random((4, d))  # low-rank preferences: something to learn
    return sp.csr_matrix((rng.random((n, d)) < 0.25 * taste / taste.mean()).astype(np.float32))


def test_fit_and_score_match_closed_form() -> None:
    x = _data()
    model = fit(x, lam=5.0, depth=2, dtype=np.float64)
    k = ntk_matrix(x, x, depth=2, dtype=np.float64)
    alpha = np.linalg.solve(k + 5.0 * np.trace(k) / len(k) * np.eye(len(k)), x.toarray())
    np.testing.assert_allclose(model.alpha, alpha, rtol=1e-8, atol=1e-10)
    ctx = _data(seed=1, n=30)
    expected = ntk_matrix(ctx, x, depth=2, dtype=np.float64) @ alpha
    np.testing.assert_allclose(score(model, ctx, batch_size=7), expected, rtol=1e-8, atol=1e-10)


def test_small_lambda_interpolates_training_rows() -> None:
    x = _data(n=40)
    model = fit(x, lam=1e-9, dtype=np.float64)
    np.testing.assert_allclose(score(model, x), x.toarray(), atol=1e-5)


def test_lambda_grid_picks_the_best_and_reuses_its_factor() -> None:
    split = paper_split(_data(n=200), seed=0)
    model, lam, results = fit_with_lambda_grid(split.train, split.val_context, split.val, lams=(0.5, 5, 50), dtype=np.float64)
    assert set(results) == {0.5, 5.0, 50.0}
    assert lam == max(results, key=lambda l: (results[l]["ndcg@10"], -l))
    reference = fit(split.train, lam=lam, dtype=np.float64)
    np.testing.assert_allclose(model.alpha, reference.alpha, rtol=1e-8, atol=1e-10)
    # the grid's shortcut scores equal the full model's masked scores
    s = score(reference, split.val_context)
    s[split.val_context.toarray() > 0] = -np.inf
    assert ranking_metrics(s, split.val, tuple(results[lam])) == pytest.approx(results[lam])
    full = evaluate(s, split.val)
    assert {k: full[k] for k in ("ndcg@10", "hr@10", "ndcg@100", "hr@100")} == pytest.approx(
        {k: results[lam][k] for k in ("ndcg@10", "hr@10", "ndcg@100", "hr@100")})


def test_unimodal_search_finds_the_grid_best_with_fewer_lambdas() -> None:
    split = paper_split(_data(n=200), seed=0)
    lams = (0.01, 0.1, 1, 5, 20, 50, 100)
    _, lam_full, full = fit_with_lambda_grid(split.train, split.val_context, split.val, lams=lams, dtype=np.float64)
    values = [full[float(l)]["ndcg@10"] for l in sorted(lams)]
    peak = int(np.argmax(values))
    assert all(np.diff(values[: peak + 1]) >= 0) and all(np.diff(values[peak:]) <= 0), "fixture must be unimodal"
    _, lam_uni, tried = fit_with_lambda_grid(split.train, split.val_context, split.val, lams=lams, dtype=np.float64, unimodal=True)
    assert lam_uni == lam_full
    assert len(tried) < len(lams)
    assert all(tried[l] == full[l] for l in tried)


def test_lambda_grid_on_sampled_users_and_float32_agrees() -> None:
    split = paper_split(_data(n=200), seed=0)
    _, lam64, r64 = fit_with_lambda_grid(split.train, split.val_context, split.val, n_val_users=80, dtype=np.float64)
    _, lam32, r32 = fit_with_lambda_grid(split.train, split.val_context, split.val, n_val_users=80, dtype=np.float32)
    assert lam32 == lam64
    assert r32[lam32]["ndcg@10"] == pytest.approx(r64[lam64]["ndcg@10"], abs=0.5)


def test_bad_inputs_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match="reg"):
        fit(_data(n=20), lam=0.0)
    singular = np.ones((4, 4))
    factor = cholesky(singular, 1e-12)  # rank 1: succeeds after the documented jitter retry
    assert np.isfinite(factor[0]).all()
    with pytest.raises(np.linalg.LinAlgError, match="positive definite"):
        cholesky(np.full((3, 3), np.nan), 1.0)
    with pytest.raises(np.linalg.LinAlgError, match="positive definite"):
        cholesky(-np.eye(3), 0.1)
    x = _data(n=20)
    with pytest.raises(ValueError, match="val_context"):
        fit_with_lambda_grid(x, x[:5], x[:4])


def test_user_budget_samples_non_empty_rows() -> None:
    x = _data(n=60).tolil()
    x[3] = 0
    x = x.tocsr()
    sample = sample_users(x, n_users=20, seed=1)
    assert sample.shape == (20, x.shape[1]) and np.diff(sample.indptr).min() > 0
    assert sample_users(x, n_users=None).shape[0] == 59
    model = fit(x, lam=5.0, n_train_users=20, seed=1)
    assert (model.x_train != sample).nnz == 0
    assert score(model, x[:5]).shape == (5, x.shape[1])


@pytest.mark.slow
def test_reproduces_paper_ml1m() -> None:
    """Authors' split of ML-1M: their code gives nDCG@10 33.39, HR@10 31.91, AUC 0.9457."""
    from pathlib import Path

    from storage.paper_splits import read_paper_split

    path = Path(__file__).resolve().parents[2] / "shared" / "data" / "paper-splits" / "ml-1m.parquet"
    if not path.is_file():
        pytest.skip("../shared paper splits are absent")
    split = read_paper_split(path)
    counts = np.asarray(split.train.sum(axis=0)).ravel()
    model, lam, _ = fit_with_lambda_grid(split.train, split.val_context, split.val, n_val_users=1000)
    scores = score(model, split.test_context)
    scores[split.test_context.nonzero()] = -np.inf
    out = evaluate(scores, split.test, item_counts=counts)
    assert lam == 5.0
    assert out["ndcg@10"] >= 33.2 and out["hr@10"] >= 31.7 and out["auc"] >= 0.944
