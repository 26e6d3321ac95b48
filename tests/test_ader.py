"""ADER on MultVAE: adaptive weight, herding, budget split, exemplar selection and storage."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from models import ader
from models.configs import MVAEConfig
from models.mvae import predict_scores, train_mvae


def test_adaptive_weight_matches_the_formula() -> None:
    got = ader.adaptive_weight(n_old_items=900, n_items=1000, n_exemplars=40, n_current=160)
    assert got == pytest.approx(0.8 * math.sqrt((900 / 1000) * (40 / 160)))
    assert ader.adaptive_weight(n_old_items=5, n_items=5, n_exemplars=7, n_current=7, base=0.5) == pytest.approx(0.5)
    assert ader.adaptive_weight(n_old_items=10, n_items=10, n_exemplars=0, n_current=3) == 0.0
    with pytest.raises(ValueError, match="n_current"):
        ader.adaptive_weight(n_old_items=1, n_items=1, n_exemplars=1, n_current=0)


def test_herding_first_pick_is_closest_to_the_mean_and_picks_are_distinct() -> None:
    f = np.array([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7], [1.0, 0.1]])
    picked = ader.herding(f, 3)
    assert picked[0] == 2  # (0.7, 0.7) normalised is the closest to the mean direction
    assert len(set(picked.tolist())) == 3
    assert ader.herding(f, 10).size == 4


def test_allocate_budget_is_proportional_and_exact() -> None:
    counts = ader.allocate_budget(np.array([6, 3, 1]), 5)
    assert counts.sum() == 5 and (counts <= [6, 3, 1]).all()
    assert counts.tolist() == [3, 2, 0]  # quotas 3, 1.5, 0.5: the tie goes to the larger group
    assert ader.allocate_budget(np.array([2, 2]), 10).tolist() == [2, 2]


def test_rarest_items() -> None:
    rows = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 1], [1, 1, 0]], dtype=np.float32))
    assert ader.rarest_items(rows).tolist() == [1, 2, 1]


@pytest.mark.parametrize("group_by_item", [True, False])
def test_select_exemplars_respects_the_budget_and_stores_old_logits(group_by_item: bool) -> None:
    rng = np.random.default_rng(0)
    rows = sp.csr_matrix((rng.random((80, 40)) < 0.15).astype(np.float32))
    seen = np.ones(40, dtype=bool)
    seen[30:] = False
    rows = sp.csr_matrix(rows.multiply(seen[None, :]))
    state = train_mvae(rows, config=MVAEConfig(hidden=16, latent=4, epochs=2, batch_size=40), seed=0, item_mask=seen)
    keep = ader.select_exemplars(state, rows, budget=12, group_by_item=group_by_item)
    assert keep.size == 12 and len(set(keep.tolist())) == 12
    ex = ader.make_exemplars(state, rows[keep], seen_items=seen)
    assert ex.logits.shape == (12, 30)
    np.testing.assert_allclose(ex.logits, predict_scores(state, rows[keep], exclude_context=False)[:, :30])
    term = ader.distill_term(ex, n_seen_items=40, n_current=48, width=45)
    assert term.rows.shape == (12, 45)
    assert term.weight == pytest.approx(0.8 * math.sqrt((30 / 40) * (12 / 48)))
