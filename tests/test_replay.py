"""The four strategies over a few tiny synthetic periods, and their state files."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from models.continual_eval import evaluate_next_period
from models.mvae import MVAEConfig, predict_scores
from models.replay import (STRATEGIES, ReplayConfig, StrategyState, as_fake_users, load_strategy_state,
                           save_strategy_state, train_strategy, training_rows)

N_ITEMS = 120
CONFIG = ReplayConfig(mvae=MVAEConfig(hidden=16, latent=4, epochs=4, patience=2, batch_size=50),
                      exemplars_per_period=5)


def synthetic_periods(n_periods: int = 4, rows: int = 40, seed: int = 0) -> list[sp.csr_matrix]:
    """Period p only uses items < 60 + 20·p, so the catalogue grows over time."""
    rng = np.random.default_rng(seed)
    out = []
    for p in range(n_periods):
        dense = np.zeros((rows, N_ITEMS), dtype=np.float32)
        for r in range(rows):
            dense[r, rng.choice(60 + 20 * p, 6, replace=False)] = 1.0
        out.append(sp.csr_matrix(dense))
    return out


def test_all_strategies_run_over_periods_and_use_their_rows(tmp_path) -> None:
    periods = synthetic_periods()
    summaries = [sp.csr_matrix(np.clip(p[:3].toarray() * 0.5, 0, 1)) for p in periods]  # 3 fake rows each
    states: dict[str, StrategyState | None] = dict.fromkeys(STRATEGIES)
    for t in range(len(periods) - 1):
        seen = np.asarray(sp.vstack(periods[:t + 1]).sum(axis=0)).ravel() > 0
        for s in STRATEGIES:
            states[s] = train_strategy(
                s, current=periods[t], past=sp.vstack(periods[:t]).tocsr() if t else None,
                summaries=sp.vstack(summaries[:t]).tocsr() if t else None,
                previous=states[s], item_mask=seen, config=CONFIG)
            counts = np.asarray(sp.vstack(periods[:t + 1]).sum(axis=0)).ravel()
            result = evaluate_next_period(states[s].model, periods[t + 1], seen_items=seen, item_counts=counts)
            assert 0.0 <= result["ndcg@10"] <= 100.0
        assert states["individual"].rows_used == 40
        assert states["joint"].rows_used == 40 * (t + 1)
        assert states["distill_cf"].rows_used == 40 + 3 * t
        assert states["ader"].rows_used == 40 + 5 * t
        assert states["ader"].exemplars.rows.shape[0] == 5 * (t + 1)
        assert states["ader"].exemplars.logits.shape == (5 * (t + 1), int(seen.sum()))
    assert states["individual"].model.step > states["joint"].model.step  # warm vs cold start
    path = tmp_path / "ader.pt"
    save_strategy_state(states["ader"], path)
    loaded = load_strategy_state(path)
    assert loaded.periods_trained == 3 and loaded.strategy == "ader"
    np.testing.assert_array_equal(loaded.exemplars.logits, states["ader"].exemplars.logits)
    assert (loaded.exemplars.rows != states["ader"].exemplars.rows).nnz == 0
    np.testing.assert_array_equal(predict_scores(loaded.model, periods[3][:5]),
                                  predict_scores(states["ader"].model, periods[3][:5]))


def test_summary_rows_weigh_as_much_as_a_mean_real_row() -> None:
    current = sp.csr_matrix(np.array([[1, 1, 0, 0], [1, 1, 1, 1]], dtype=np.float32))  # mean mass 3
    summaries = sp.csr_matrix(np.array([[0.5, 0.25, 0, 0], [0, 0, 0, 0], [0.1, 0, 0, 0.2]], dtype=np.float32))
    scaled = as_fake_users(summaries, current).toarray()
    np.testing.assert_allclose(scaled.sum(axis=1), [3, 0, 3], rtol=1e-6)
    np.testing.assert_allclose(scaled[0], [2, 1, 0, 0], rtol=1e-6)  # proportions kept
    rows = training_rows("distill_cf", current=current, past=None, summaries=summaries, previous=None)
    np.testing.assert_allclose(rows.toarray(), np.vstack([current.toarray(), scaled]), rtol=1e-6)


def test_bad_inputs_name_the_argument() -> None:
    periods = synthetic_periods(1)
    seen = np.ones(N_ITEMS, dtype=bool)
    with pytest.raises(ValueError, match="strategy"):
        train_strategy("replay-all", current=periods[0], past=None, summaries=None, previous=None,
                       item_mask=seen, config=CONFIG)
