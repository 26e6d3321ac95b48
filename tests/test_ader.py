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


def _toy_term(scale: float) -> tuple[dict, "mvae.DistillTerm", np.ndarray]:
    from models import mvae

    rng = np.random.default_rng(0)
    rows = sp.csr_matrix((rng.random((16, 50)) < 0.3).astype(np.float32) * scale)
    state = mvae.init_state(50, config=MVAEConfig(hidden=32, latent=8), seed=0)
    old_items = np.arange(40)
    logits = rng.normal(size=(16, 40)).astype(np.float32)
    term = mvae.DistillTerm(rows=rows, old_logits=logits, old_items=old_items, weight=1.0)
    params = {k: v.clone().requires_grad_(True) for k, v in state.params.items()}
    return params, term, rows


def test_kd_term_carries_the_mass_of_its_exemplar() -> None:
    """Scaling an exemplar's mass scales its likelihood and its distillation term alike, and at
    λ_t = 1 the two terms' gradients are of the same order on a toy batch."""
    import torch

    from models import mvae

    index = np.arange(16)
    norms = {}
    for scale in (1.0, 3.0):
        params, term, rows = _toy_term(scale)
        x = mvae.to_batch(rows)
        kd = mvae.distill_loss(params, term, index, torch.device("cpu"))
        nll = mvae.vae_loss(params, x, beta=0.0, dropout=0.0, g=torch.Generator().manual_seed(0))
        norms[scale] = (float(kd.detach()), float(nll.detach()))
        if scale == 1.0:
            g_kd = torch.autograd.grad(kd, list(params.values()), allow_unused=True)
            g_nll = torch.autograd.grad(
                mvae.vae_loss(params, x, beta=0.0, dropout=0.0, g=torch.Generator().manual_seed(0)),
                list(params.values()), allow_unused=True)
            size = lambda grads: float(torch.sqrt(sum((g ** 2).sum() for g in grads if g is not None)))  # noqa: E731
            assert 0.1 < size(g_kd) / size(g_nll) < 10
    assert norms[3.0][0] / norms[1.0][0] == pytest.approx(3.0, rel=1e-5)
    # the likelihood term is linear in x too (the encoder input is L2-normalised, scale-free)
    assert norms[3.0][1] / norms[1.0][1] == pytest.approx(3.0, rel=1e-5)
