"""MultVAE: growing catalogue, masking, determinism, β = 0, state arrays."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from dataclasses import replace

from models.configs import MVAEConfig
from models.metrics import ranking_metrics
from models.mvae import (grow_state, init_state, predict_scores, state_arrays, state_from_arrays, to_batch,
                         train_mvae, vae_loss)
from models.splits import holdout_fold
from storage.arrays import read_arrays, write_arrays

SMALL = MVAEConfig(hidden=32, latent=8, batch_size=64, epochs=15, patience=5)
SEED = 0


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
    state = train_mvae(rows, config=replace(SMALL, epochs=2), seed=SEED)
    grown = grow_state(state, rows.shape[1] + 7, seed=3)
    before = predict_scores(state, rows[:20], exclude_context=False)
    wide = sp.hstack([rows[:20], sp.csr_matrix((20, 7))]).tocsr()
    after = predict_scores(grown, wide, exclude_context=False)
    np.testing.assert_array_equal(after[:, :rows.shape[1]], before)
    assert np.isfinite(after[:, rows.shape[1]:]).all()
    # the Adam moments grew with the weights, so training continues on the wider catalogue
    again = train_mvae(wide, config=SMALL, seed=SEED, init=state)
    assert again.n_items == rows.shape[1] + 7 and again.step > state.step


def test_masked_and_context_items_never_in_top_k() -> None:
    rows = planted_rows()
    mask = np.ones(rows.shape[1], dtype=bool)
    mask[::5] = False
    train = sp.csr_matrix(rows.multiply(mask[None, :]))
    state = train_mvae(train, config=SMALL, seed=SEED, item_mask=mask)
    scores = predict_scores(state, train[:50], item_mask=mask)
    top = np.argsort(-scores, axis=1)[:, :10]
    assert not np.isin(top, np.flatnonzero(~mask)).any()
    assert all(train[r, top[r]].nnz == 0 for r in range(50))
    assert np.isneginf(scores[:, ~mask]).all()
    # unseen items' weights get no gradient: they stay at their initial values
    fresh = init_state(rows.shape[1], config=SMALL, seed=SEED)
    np.testing.assert_array_equal(state.params["dec1.weight"][~mask], fresh.params["dec1.weight"][~mask])
    np.testing.assert_array_equal(state.params["enc0.weight"][:, ~mask], fresh.params["enc0.weight"][:, ~mask])
    assert not np.array_equal(state.params["dec1.weight"][mask], fresh.params["dec1.weight"][mask])


def test_training_is_deterministic_on_cpu() -> None:
    rows = planted_rows()
    a = train_mvae(rows, config=SMALL, seed=SEED)
    b = train_mvae(rows, config=SMALL, seed=SEED)
    for name in a.params:
        torch.testing.assert_close(a.params[name], b.params[name], rtol=0, atol=0)


def test_beta_zero_is_the_multinomial_dae_loss_and_learns() -> None:
    rows = planted_rows()
    state = init_state(rows.shape[1], config=SMALL, seed=SEED)
    x = torch.from_numpy(rows[:10].toarray())
    g = torch.Generator().manual_seed(0)
    loss = vae_loss(state.params, to_batch(rows[:10]), beta=0.0, dropout=0.0, g=g)
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
    train, context, targets = holdout_fold(rows, row_fraction=0.3, item_fraction=0.2, seed=1)
    trained = train_mvae(train, config=replace(SMALL, anneal_cap=0.0, lr=1e-2, epochs=30), seed=SEED,
                         validation=(context, targets))
    scores = predict_scores(trained, context)
    noise = np.random.default_rng(0).random(scores.shape)
    random_scores = np.where(context.toarray() > 0, -np.inf, noise)
    # the learnable part is "which half": ceiling ≈ 40, random ≈ 17
    ndcg = ranking_metrics(scores, targets, ("ndcg@10",))["ndcg@10"]
    assert ndcg > ranking_metrics(random_scores, targets, ("ndcg@10",))["ndcg@10"] + 8


def test_fractional_rows_and_state_arrays_round_trip(tmp_path) -> None:
    rows = planted_rows()
    fractional = sp.csr_matrix(rows.multiply(0.3))
    state = train_mvae(sp.vstack([rows, fractional]).tocsr(), config=SMALL, seed=SEED)
    write_arrays(tmp_path / "m.state", state_arrays(state))
    loaded = state_from_arrays(read_arrays(tmp_path / "m.state"))
    np.testing.assert_array_equal(predict_scores(loaded, rows[:5]), predict_scores(state, rows[:5]))
    assert loaded.step == state.step
    # warm-starting from the loaded state continues exactly as from the state in memory
    a = train_mvae(rows, config=replace(SMALL, epochs=2), seed=SEED, init=state)
    b = train_mvae(rows, config=replace(SMALL, epochs=2), seed=SEED, init=loaded)
    for name in a.params:
        torch.testing.assert_close(a.params[name], b.params[name], rtol=0, atol=0)


def test_device_cuda_without_a_gpu_fails_at_once() -> None:
    from models.device import DeviceUnavailable

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(DeviceUnavailable, match="cuda"):
        train_mvae(planted_rows(), config=replace(SMALL, device="cuda"), seed=SEED)


def test_beta_is_a_function_of_the_updates_of_the_current_call(monkeypatch) -> None:
    """A warm-started model and one trained from scratch see the same β after the same updates."""
    import models.mvae as mvae

    config = replace(SMALL, epochs=3, batch_size=50, anneal_updates=8)
    assert [mvae.kl_weight(u, config) for u in (0, 4, 8, 20)] == pytest.approx([0.0, 0.1, 0.2, 0.2])
    assert mvae.kl_weight(0, replace(config, anneal_updates=0)) == pytest.approx(0.2)
    rows = planted_rows()
    warm = train_mvae(rows, config=config, seed=SEED)
    assert warm.step == 12  # 4 batches × 3 epochs
    seen: list[int] = []
    real = mvae.kl_weight
    monkeypatch.setattr(mvae, "kl_weight", lambda updates, cfg: seen.append(updates) or real(updates, cfg))
    train_mvae(rows, config=config, seed=SEED, init=warm)
    from_warm, seen[:] = list(seen), []
    train_mvae(rows, config=config, seed=SEED)
    assert from_warm == seen == list(range(12))


def test_validation_in_blocks_equals_one_block() -> None:
    from models.mvae import _validate

    rows = planted_rows()
    train, context, targets = holdout_fold(rows, item_fraction=0.2, seed=1)
    state = train_mvae(train, config=replace(SMALL, epochs=2), seed=SEED)
    device = torch.device("cpu")
    assert _validate(state.params, (context, targets), device, block_rows=13) == pytest.approx(
        _validate(state.params, (context, targets), device, block_rows=10_000), rel=1e-12)
