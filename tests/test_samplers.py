"""Samplers: budgets kept exactly, seeds reproducible, SVP-CF's greedy order, propensity weighting."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from models.configs import DistillConfig, ProxyConfig, SamplerConfig
from models.metrics import propensity_weights
from models.proxy_mf import interaction_losses
from models.samplers import (ALL, SAMPLERS, Budget, Unit, get_sampler, inverse_propensity_scores, keep_users,
                             ranking_from_scores, svp_cf_rows)
from storage.synthetic import synthetic_interactions

FAST = SamplerConfig(proxy=ProxyConfig(factors=4, epochs=2, batch_size=256),
                     distill=DistillConfig(n_fake_users=4, gamma=5, steps=3, patience=3, eval_every=1))
RANKERS = [name for name, s in SAMPLERS.items() if s.unit is not Unit.SYNTHETIC]


@pytest.fixture(scope="module")
def log() -> sp.csr_matrix:
    """A skewed synthetic log: 80 users, 120 items, a few empty rows."""
    frame = synthetic_interactions(n_users=80, n_items=120, n_interactions=2500, seed=3)
    x = sp.csr_matrix((np.ones(frame.height, np.float32), (frame["user_id"].to_numpy() - 1,
                                                          frame["item_id"].to_numpy() - 1)), shape=(84, 120))
    x.sum_duplicates()
    x.data[:] = 1.0
    return x


def test_registry_has_the_six_samplers_in_report_order() -> None:
    assert list(SAMPLERS) == ["interaction_rns", "user_rns", "head_user", "svp_cf", "svp_cf_prop", "distill_cf"]
    with pytest.raises(ValueError, match="sampler must be one of"):
        get_sampler("random")


@pytest.mark.parametrize("name", RANKERS)
@pytest.mark.parametrize("users", [1, 7, 30])
def test_user_budgets_are_kept_exactly(log: sp.csr_matrix, name: str, users: int) -> None:
    kept = get_sampler(name).sample(log, Budget(users=users), seed=0, config=FAST)
    active = int(np.count_nonzero(np.diff(log.indptr)))
    if get_sampler(name).unit is Unit.USERS:
        assert kept.matrix.shape[0] == users == len(kept.rows)
        np.testing.assert_array_equal(kept.matrix.toarray(), log[kept.rows].toarray())
    else:  # the matching share of the interactions
        assert kept.n_interactions == round(log.nnz * users / active)
        assert (kept.matrix.toarray() <= log[kept.rows].toarray()).all()


@pytest.mark.parametrize("name", RANKERS)
@pytest.mark.parametrize("interactions", [1, 37, 400])
def test_interaction_budgets_are_never_exceeded(log: sp.csr_matrix, name: str, interactions: int) -> None:
    kept = get_sampler(name).sample(log, Budget(interactions=interactions), seed=0, config=FAST)
    if get_sampler(name).unit is Unit.INTERACTIONS:
        assert kept.n_interactions == interactions
        return
    assert kept.n_interactions <= interactions
    room = interactions - kept.n_interactions  # the greedy fill: no user left out would still fit
    left_out = np.setdiff1d(np.flatnonzero(np.diff(log.indptr)), kept.rows)
    assert (np.diff(log.indptr)[left_out] > room).all()


@pytest.mark.parametrize("name", [*RANKERS, "distill_cf"])
def test_a_budget_covering_the_data_keeps_every_non_empty_row(log: sp.csr_matrix, name: str) -> None:
    for budget in (ALL, Budget(users=10_000)):
        kept = get_sampler(name).sample(log, budget, seed=0, config=FAST)
        np.testing.assert_array_equal(kept.rows, np.flatnonzero(np.diff(log.indptr)))
        assert kept.n_interactions == log.nnz


@pytest.mark.parametrize("name", RANKERS)
def test_same_seed_same_sample(log: sp.csr_matrix, name: str) -> None:
    first, again, other = (get_sampler(name).sample(log, Budget(users=12), seed=s, config=FAST) for s in (5, 5, 6))
    np.testing.assert_array_equal(first.rows, again.rows)
    assert (first.matrix != again.matrix).nnz == 0
    if name in ("interaction_rns", "user_rns"):
        assert (first.matrix.shape != other.matrix.shape) or (first.matrix != other.matrix).nnz > 0


def test_proxy_losses_are_seeded_and_aligned_with_the_entries(log: sp.csr_matrix) -> None:
    a, b = (interaction_losses(log, config=FAST.proxy, seed=1) for _ in range(2))
    np.testing.assert_array_equal(a, b)
    assert a.shape == (log.nnz,) and (a > 0).all()
    assert not np.array_equal(a, interaction_losses(log, config=FAST.proxy, seed=2))


def test_svp_cf_keeps_the_users_with_the_highest_summed_scores() -> None:
    # users 0..4 hold 2, 1, 3, 1, 2 interactions; their summed scores are 1.0, 5.0, 0.3, 4.0, 2.5
    x = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 1, 0, 0], [1, 1, 1, 0], [0, 0, 0, 1], [1, 0, 0, 1]], np.float32))
    scores = np.array([0.5, 0.5, 5.0, 0.1, 0.1, 0.1, 4.0, 2.0, 0.5])
    ranking = ranking_from_scores(x, scores)
    np.testing.assert_array_equal(ranking.order, [1, 3, 4, 0, 2])
    np.testing.assert_array_equal(keep_users(x, ranking.order, Budget(users=2)).rows, [1, 3])
    # 4 interactions: users 1 (1) and 3 (1) fit, user 4 (2) fits exactly, user 0 no longer does
    np.testing.assert_array_equal(keep_users(x, ranking.order, Budget(interactions=4)).rows, [1, 3, 4])
    # 3 interactions: after users 1 and 3, user 4 (2) does not fit, 0 (2) does not, 2 (3) does not
    np.testing.assert_array_equal(keep_users(x, ranking.order, Budget(interactions=3)).rows, [1, 3])


def test_propensity_weighting_puts_a_rare_interaction_before_a_popular_one() -> None:
    # item 0 is popular (6 users), item 1 rare (1 user); user 0 holds only the popular item,
    # user 1 only the rare one; the proxy scores the popular interaction a little higher
    dense = np.zeros((7, 3), np.float32)
    dense[[0, 2, 3, 4, 5, 6], 0] = 1.0
    dense[1, 1] = 1.0
    dense[2:, 2] = 1.0
    x = sp.csr_matrix(dense)
    scores = np.full(x.nnz, 0.01)
    scores[0], scores[1] = 1.0, 0.8  # entries (0, 0) popular and (1, 1) rare
    assert list(ranking_from_scores(x, scores).order[:2]) == [0, 1]
    weighted = inverse_propensity_scores(x, scores)
    w = propensity_weights(np.array([6, 1, 5]))
    assert weighted[0] == pytest.approx(1.0 * w[0]) and weighted[1] == pytest.approx(0.8 * w[1])
    assert list(ranking_from_scores(x, weighted).order[:2]) == [1, 0]


def test_svp_cf_rows_fits_the_budget_and_matches_the_sampler(log: sp.csr_matrix) -> None:
    rows = svp_cf_rows(log, seed=0, interactions=300, proxy=FAST.proxy)
    assert np.diff(log.indptr)[rows].sum() <= 300 and np.all(np.diff(rows) > 0)
    sample = get_sampler("svp_cf").sample(log, Budget(interactions=300), seed=0, config=FAST)
    np.testing.assert_array_equal(rows, sample.rows)
    prop = svp_cf_rows(log, seed=0, interactions=300, proxy=FAST.proxy, propensity=True)
    np.testing.assert_array_equal(prop, get_sampler("svp_cf_prop").sample(log, Budget(interactions=300), seed=0,
                                                                          config=FAST).rows)


def test_head_user_keeps_the_most_active_users(log: sp.csr_matrix) -> None:
    kept = get_sampler("head_user").sample(log, Budget(users=5), seed=0)
    sizes = np.diff(log.indptr)
    assert sizes[kept.rows].min() >= np.delete(sizes, kept.rows).max()


def test_distill_cf_synthesises_mu_users_and_refuses_interaction_budgets(log: sp.csr_matrix) -> None:
    sampler = get_sampler("distill_cf")
    kept = sampler.sample(log, Budget(users=4), seed=0, config=FAST)
    assert kept.rows is None and kept.matrix.shape == (4, log.shape[1]) and kept.n_interactions > 0
    with pytest.raises(ValueError, match="user budget"):
        sampler.sample(log, Budget(interactions=50), seed=0, config=FAST)


def test_budget_validation_names_the_problem() -> None:
    with pytest.raises(ValueError, match="not both"):
        Budget(users=3, interactions=5)
    with pytest.raises(ValueError, match="users must be >= 1"):
        Budget(users=0)
    with pytest.raises(ValueError, match="interaction_scores"):
        ranking_from_scores(sp.csr_matrix(np.eye(3, dtype=np.float32)), np.ones(2))
