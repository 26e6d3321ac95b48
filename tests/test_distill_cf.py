"""Distill-CF: sampler gradient, noise, determinism, resume, validation metric, helpers."""

from __future__ import annotations

from dataclasses import replace
from typing import get_args

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp

from models.configs import DistillConfig, Noise
from models.distill_cf import VAL_ITEM_FRACTION, distill, distill_rows, sparsify
from models.gumbel import SAMPLERS
from models.gumbel import (
    gumbel_noise,
    inverse_root,
    multi_gumbel_softmax,
    pooled_multi_gumbel_softmax,
    pooled_noise,
    reference_multi_gumbel_softmax,
)
from models.infinite_ae import fit_with_lambda_grid
from models.krr import predict_traceable
from models.metrics import evaluate
from models.splits import holdout_fold

TINY = DistillConfig(n_fake_users=8, gamma=4, steps=6, patience=100, batch_size=24, eval_every=2,
                     checkpoint_every=2, inner_lams=(0.1, 1.0, 5.0), noise="pooled", max_share=None)
SEED = 3


@pytest.fixture(scope="module")
def rows() -> sp.csr_matrix:
    """60 users × 120 items in 4 taste groups."""
    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 4, 60), rng.integers(0, 4, 120)
    p = np.where(users[:, None] == items[None, :], 0.35, 0.03)
    return sp.csr_matrix((rng.random(p.shape) < p).astype(np.float32))


def _explicit_pooled(logits, key, gamma, tau):
    """Σ_k softmax((x + G_k)/τ) with the γ samples G_k[u, i] = P[k, π_u(i)] spelled out."""
    pool, positions, _ = pooled_noise(key, logits.shape, gamma)
    samples = jax.nn.softmax((logits[None] + pool[:, positions]) / tau, axis=-1)  # (γ, μ, |I|)
    return samples.sum(axis=0)


@pytest.mark.parametrize("tau", [0.5, 0.3, 5.0])
@pytest.mark.parametrize(("sampler", "explicit", "grad_atol"), [
    (multi_gumbel_softmax, reference_multi_gumbel_softmax, 1e-6),  # custom_vjp vs plain autodiff
    (pooled_multi_gumbel_softmax, _explicit_pooled, 1e-5),  # GEMM form vs the samples spelled out
], ids=["independent", "pooled"])
def test_sampler_value_and_gradient_equal_explicit_samples(sampler, explicit, grad_atol: float, tau: float) -> None:
    logits = jax.random.normal(jax.random.key(0), (5, 17)) * 2.0
    key = jax.random.key(7)
    weights = jax.random.normal(jax.random.key(1), (5, 17))

    def loss(f):
        return lambda z: jnp.sum(weights * jnp.minimum(f(z, key, 6, tau), 1.0) ** 2)

    np.testing.assert_allclose(sampler(logits, key, 6, tau), explicit(logits, key, 6, tau), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(jax.grad(loss(sampler))(logits), jax.grad(loss(explicit))(logits),
                               rtol=1e-4, atol=grad_atol)


def test_pooled_noise_permutes_each_row_differently() -> None:
    pool, positions, items = pooled_noise(jax.random.key(3), (40, 101), 7)
    positions, items = np.asarray(positions), np.asarray(items)
    assert pool.shape == (7, 101)
    assert (np.sort(positions, axis=1) == np.arange(101)).all()
    np.testing.assert_array_equal(np.take_along_axis(items, positions, axis=1), np.tile(np.arange(101), (40, 1)))
    # any two rows map an item to the same pool column for about 1/|I| of the items, not all
    same = (positions[:, None, :] == positions[None, :, :]).mean(axis=-1)[~np.eye(40, dtype=bool)]
    assert same.mean() < 0.05


def test_pooled_and_independent_samplers_agree_in_distribution() -> None:
    """Both sum γ i.i.d. Gumbel-softmax samples per row, so each entry's mean and spread match."""
    logits = jax.random.normal(jax.random.key(0), (4, 30)) * 1.5
    keys = jax.random.split(jax.random.key(1), 4000)

    def draws(sampler):
        return np.asarray(jax.jit(jax.vmap(lambda k: sampler(logits, k, 5, 5.0)))(keys))

    pooled, independent = draws(pooled_multi_gumbel_softmax), draws(multi_gumbel_softmax)
    se = np.sqrt((pooled.var(axis=0) + independent.var(axis=0)) / len(keys))
    assert (np.abs(pooled.mean(axis=0) - independent.mean(axis=0)) / se).max() < 4.5
    np.testing.assert_allclose(pooled.std(axis=0), independent.std(axis=0), rtol=0.1)


def test_gumbel_noise_is_gumbel_and_distinct_per_sample() -> None:
    seeds = jax.random.bits(jax.random.key(0), (400, 500), dtype=jnp.uint32)
    g0, g1 = np.asarray(gumbel_noise(seeds, 0)), np.asarray(gumbel_noise(seeds, 1))
    assert abs(g0.mean() - np.euler_gamma) < 0.01
    assert abs(g0.var() - np.pi**2 / 6) < 0.03
    assert abs(np.corrcoef(g0.ravel(), g1.ravel())[0, 1]) < 0.01
    assert (g0 != g1).mean() > 0.99


@pytest.mark.parametrize("m", [2, 5, 8])
def test_inverse_root_is_float32_exact(m: int) -> None:
    e = np.concatenate([np.geomspace(6e-8, 17.0, 20_001), np.random.default_rng(0).exponential(size=20_000)])
    e = e.astype(np.float32)
    got = np.asarray(inverse_root(jnp.asarray(e), m), dtype=np.float64)
    assert np.max(np.abs(got / e.astype(np.float64) ** (-1 / m) - 1)) < 2e-7


@pytest.mark.parametrize("sampler", [multi_gumbel_softmax, pooled_multi_gumbel_softmax])
def test_rows_sum_to_gamma(sampler) -> None:
    total = sampler(jnp.zeros((3, 50)), jax.random.key(0), 9, 0.5)
    np.testing.assert_allclose(total.sum(axis=1), 9.0, rtol=1e-5)


def test_noise_names_are_the_samplers() -> None:
    assert set(SAMPLERS) == set(get_args(Noise))


def test_krr_gradient_is_finite(rows: sp.csr_matrix) -> None:
    x = jnp.asarray(rows[:20].toarray())
    assert np.isfinite(jax.grad(lambda z: jnp.sum(predict_traceable(z, x, lam=0.1)))(x[:7])).all()


def test_validation_matches_metrics_evaluate(rows: sp.csr_matrix) -> None:
    """The summary's validation (∞-AE on it, λ grid, HR@100) equals the full metrics on the
    differentiable KRR prediction with the chosen λ."""
    _, context, targets = holdout_fold(rows, item_fraction=0.2, seed=1)
    support = sp.csr_matrix(rows[:10])
    _, lam, results = fit_with_lambda_grid(support, context, targets, lams=(0.1, 1.0), select_by="hr@100")
    scores = np.asarray(predict_traceable(jnp.asarray(support.toarray()), jnp.asarray(context.toarray()), lam=lam),
                        dtype=np.float64)
    scores[context.toarray() > 0] = -np.inf
    assert results[lam]["hr@100"] == pytest.approx(evaluate(scores, targets, ks=(100,))["hr@100"], abs=1e-3)


@pytest.fixture(scope="module")
def tiny_result(rows: sp.csr_matrix):
    return distill_rows(rows, config=TINY, seed=SEED)


def test_same_seed_same_summary(rows: sp.csr_matrix, tiny_result) -> None:
    a, b = tiny_result, distill_rows(rows, config=TINY, seed=SEED)
    assert (a.summary != b.summary).nnz == 0
    assert a.summary.shape == (8, 120)
    assert a.summary.data.min() >= TINY.threshold and a.summary.data.max() <= 1.0
    c = distill_rows(rows, config=TINY, seed=SEED + 1)
    assert (a.summary != c.summary).nnz > 0


def test_resume_gives_the_same_summary(rows: sp.csr_matrix, tiny_result, tmp_path) -> None:
    """A run that crashed at step 5 resumes from its last checkpoint (written to a real array
    file, read back without pickle) and ends exactly as the uninterrupted run."""
    from storage.arrays import read_arrays, write_arrays

    path = tmp_path / "run.ckpt"
    save = lambda arrays: write_arrays(path, arrays)  # noqa: E731

    class Crash(Exception):
        pass

    def crash_at_5(step: int, loss: float, best: float) -> None:
        if step == 5:
            raise Crash

    with pytest.raises(Crash):
        distill_rows(rows, config=TINY, seed=SEED, on_checkpoint=save, progress=crash_at_5)
    resumed = distill_rows(rows, config=TINY, seed=SEED, resume=read_arrays(path), on_checkpoint=save)
    assert resumed.steps == tiny_result.steps == 6
    np.testing.assert_array_equal(resumed.summary.toarray(), tiny_result.summary.toarray())
    assert resumed.best_step == tiny_result.best_step
    with pytest.raises(ValueError, match="tau"):
        distill_rows(rows, config=replace(TINY, tau=0.3), seed=SEED, resume=read_arrays(path))
    with pytest.raises(ValueError, match="seed"):
        distill_rows(rows, config=TINY, seed=SEED + 1, resume=read_arrays(path))


def test_progress_and_early_stopping(rows: sp.csr_matrix) -> None:
    seen = []
    result = distill_rows(rows, config=replace(TINY, steps=50, patience=4), seed=SEED,
                          progress=lambda s, loss, best: seen.append((s, loss, best)))
    assert [s for s, _, _ in seen] == list(range(1, result.steps + 1))
    assert result.steps < 50 and result.steps - result.best_step >= 4
    assert all(np.isfinite(loss) for _, loss, _ in seen)


def test_sparsify_threshold_and_top() -> None:
    dense = np.array([[0.9, 0.05, 0.5, 0.2], [0.0, 1.0, 0.3, 0.3]], dtype=np.float32)
    kept = np.where(dense >= 0.1, dense, 0)
    np.testing.assert_array_equal(sparsify(dense, threshold=0.1).toarray(), kept)
    kept[0, 3] = kept[1, 3] = 0  # top 2 per row; the tie at 0.3 keeps the lower item index
    np.testing.assert_array_equal(sparsify(dense, threshold=0.1, keep_top=2).toarray(), kept)


def test_period_validation_fold_holds_out_every_bag(rows: sp.csr_matrix) -> None:
    train, context, held = holdout_fold(rows, item_fraction=VAL_ITEM_FRACTION, seed=0)
    n = np.diff(rows.indptr)
    np.testing.assert_array_equal(context.toarray(), train[n >= 2].toarray())
    np.testing.assert_array_equal(np.diff(held.indptr), np.maximum(1, np.round(VAL_ITEM_FRACTION * n[n >= 2])))
    assert train.nnz + held.nnz == rows.nnz


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="tau"):
        DistillConfig(tau=0)
    with pytest.raises(ValueError, match="gamma"):
        DistillConfig(gamma=0)
    with pytest.raises(ValueError, match="noise"):
        DistillConfig(noise="loud")
    with pytest.raises(ValueError, match="inner_lams"):
        DistillConfig(inner_lams=(0.0, 1.0))


def test_a_period_summary_holds_at_most_its_share_of_the_period(rows: sp.csr_matrix) -> None:
    """With max_share, μ shrinks until μ × (stored entries per fake user) fits the share."""
    from models.distill_cf import period_fake_users, stored_row_size

    train, _, _ = holdout_fold(rows, item_fraction=VAL_ITEM_FRACTION, seed=SEED)
    per_user = stored_row_size(train, TINY)
    assert per_user == int(np.ceil(2.0 * train.nnz / train.shape[0]))
    capped = replace(TINY, max_share=0.1)
    mu = period_fake_users(rows, train, capped)
    assert mu == max(1, int(0.1 * rows.nnz // per_user)) < TINY.n_fake_users
    result = distill_rows(rows, config=capped, seed=SEED)
    assert result.summary.shape[0] == mu and result.summary.nnz <= 0.1 * rows.nnz
    assert period_fake_users(rows, train, replace(TINY, max_share=1.0)) == TINY.n_fake_users
