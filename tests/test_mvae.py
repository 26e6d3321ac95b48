"""MultVAE: growing catalogue, masking, determinism, β = 0, state files, validation fold."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from models.mvae import (MVAEConfig, grow_state, holdout_fold, init_state, load_state, ndcg_at_k,
                         predict_scores, save_state, train_mvae, vae_loss)

SMALL = MVAEConfig(hidden=32, latent=8, batch_size=64, epochs=15, patience=5)


def planted_rows(n_rows: int = 200, n_items: int = 60, seed: int = 0) -> sp.csr_matrix:
    """Two user groups, each interacting with its own half of the items (learnable structure)."""
    rng = np.random.default_rng(seed)
    dense = np.zeros((n_rows, n_items), dtype=np.float32)
    half = n_items // 2
    for r in range(n_rows):
        lo = 0 if r % 2 == 0 else half
        dense[r, lo + rng.choice(half, 8, replace=False)] = 1.0
    return sp.csr_matrix(dense)


def test_grown_catalogue_keeps_old_item_scores_before_training() -> None:
    rows = planted_rows()
    state = train_mvae(rows, config=SMALL.__class__(**{**SMALL.__dict__, "epochs": 2}))
    grown = grow_state(state, rows.shape[1] + 7, seed=3)
    before = predict_scores(state, rows[:20], exclude_context=False)
    wide = sp.hstack([rows[:20], sp.csr_matrix((20, 7))]).tocsr()
    after = predict_scores(grown, wide, exclude_context=False)
    np.testing.assert_array_equal(after[:, :rows.shape[1]], before)
    assert np.isfinite(after[:, rows.shape[1]:]).all()
    # the Adam moments grew with the weights, so training continues on the wider catalogue
    again = train_mvae(wide, config=SMALL, init=state)
    assert again.n_items == rows.shape[1] + 7 and again.step > state.step


def test_masked_and_context_items_never_in_top_k() -> None:
    rows = planted_rows()
    mask = np.ones(rows.shape[1], dtype=bool)
    mask[::5] = False
    train = sp.csr_matrix(rows.multiply(mask[None, :]))
    state = train_mvae(train, config=SMALL, item_mask=mask)
    scores = predict_scores(state, train[:50], item_mask=mask)
    top = np.argsort(-scores, axis=1)[:, :10]
    assert not np.isin(top, np.flatnonzero(~mask)).any()
    assert all(train[r, top[r]].nnz == 0 for r in range(50))
    assert np.isneginf(scores[:, ~mask]).all()
    # unseen items' weights get no gradient: they stay at their initial values
    fresh = init_state(rows.shape[1], config=SMALL)
    np.testing.assert_array_equal(state.params["dec1.weight"][~mask], fresh.params["dec1.weight"][~mask])
    np.testing.assert_array_equal(state.params["enc0.weight"][:, ~mask], fresh.params["enc0.weight"][:, ~mask])
    assert not np.array_equal(state.params["dec1.weight"][mask], fresh.params["dec1.weight"][mask])


def test_training_is_deterministic_on_cpu() -> None:
    rows = planted_rows()
    a = train_mvae(rows, config=SMALL)
    b = train_mvae(rows, config=SMALL)
    for name in a.params:
        torch.testing.assert_close(a.params[name], b.params[name], rtol=0, atol=0)


def test_beta_zero_is_the_multinomial_dae_loss_and_learns() -> None:
    rows = planted_rows()
    state = init_state(rows.shape[1], config=SMALL)
    x = torch.from_numpy(rows[:10].toarray())
    g = torch.Generator().manual_seed(0)
    loss = vae_loss(state.params, x, beta=0.0, dropout=0.0, mask=None, g=g)
    # β = 0: the loss is the multinomial NLL of the sampled decoder only (recompute it by hand)
    g = torch.Generator().manual_seed(0)
    p = state.params
    h = torch.tanh(torch.nn.functional.linear(x / x.norm(dim=1, keepdim=True), p["enc0.weight"], p["enc0.bias"]))
    stats = torch.nn.functional.linear(h, p["enc1.weight"], p["enc1.bias"])
    mu, logvar = stats[:, :8], stats[:, 8:]
    z = mu + torch.randn(mu.shape, generator=g) * torch.exp(0.5 * logvar)
    logits = torch.nn.functional.linear(torch.tanh(torch.nn.functional.linear(z, p["dec0.weight"], p["dec0.bias"])),
                                        p["dec1.weight"], p["dec1.bias"])
    expected = -(x * torch.log_softmax(logits, dim=1)).sum(dim=1).mean()
    torch.testing.assert_close(loss, expected)
    train, context, targets = holdout_fold(rows, user_fraction=0.3, seed=1)
    trained = train_mvae(train, config=MVAEConfig(**{**SMALL.__dict__, "anneal_cap": 0.0, "lr": 1e-2, "epochs": 30}),
                         validation=(context, targets))
    scores = torch.from_numpy(predict_scores(trained, context))
    noise = torch.rand(scores.shape, generator=torch.Generator().manual_seed(0))
    random_scores = noise.masked_fill(torch.from_numpy(context.toarray() > 0), -float("inf"))
    # the learnable part is "which half": ceiling ≈ 0.4, random ≈ 0.17
    assert ndcg_at_k(scores, targets, k=10) > ndcg_at_k(random_scores, targets, k=10) + 0.08


def test_fractional_rows_and_state_file_round_trip(tmp_path) -> None:
    rows = planted_rows()
    fractional = sp.csr_matrix(rows.multiply(0.3))
    state = train_mvae(sp.vstack([rows, fractional]).tocsr(), config=SMALL)
    save_state(state, tmp_path / "m.pt")
    loaded = load_state(tmp_path / "m.pt")
    np.testing.assert_array_equal(predict_scores(loaded, rows[:5]), predict_scores(state, rows[:5]))
    assert loaded.step == state.step and loaded.anneal_steps == state.anneal_steps


def test_holdout_fold_is_a_partition_of_picked_rows() -> None:
    rows = planted_rows()
    eligible = np.arange(rows.shape[0]) < 100
    train, context, targets = holdout_fold(rows, user_fraction=0.2, seed=0, eligible=eligible)
    assert context.shape[0] == targets.shape[0] == 20
    assert train.nnz + targets.nnz == rows.nnz
    assert context.multiply(targets).nnz == 0
    assert (np.diff(targets.indptr) >= 1).all()
    with pytest.raises(ValueError, match="user_fraction"):
        holdout_fold(rows, user_fraction=0.0)
