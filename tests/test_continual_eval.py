"""The 80/20 fold-in evaluation of M_t on period t+1."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from models.continual_eval import evaluate_period, fold_in_split
from models.configs import MVAEConfig
from models.mvae import train_mvae


def test_fold_in_split_rules() -> None:
    dense = np.zeros((4, 20), dtype=np.float32)
    dense[0, :10] = 1  # 10 items → 2 targets
    dense[1, 3] = 1  # 1 item → skipped
    dense[2, [4, 5]] = 1  # 2 items → 1 target
    dense[3, 5:17] = 1  # 12 items → round(2.4) = 2 targets
    rows = sp.csr_matrix(dense)
    context, targets, kept = fold_in_split(rows, seed=1)
    assert kept.tolist() == [0, 2, 3]
    assert np.diff(targets.indptr).tolist() == [2, 1, 2]
    assert context.multiply(targets).nnz == 0
    np.testing.assert_array_equal((context + targets).toarray(), dense[kept])
    again, _, _ = fold_in_split(rows, seed=1)
    assert (again != context).nnz == 0


def test_unseen_targets_are_dropped_and_counted() -> None:
    rng = np.random.default_rng(0)
    train = sp.csr_matrix((rng.random((60, 120)) < 0.1).astype(np.float32))
    seen = np.ones(120, dtype=bool)
    seen[100:] = False
    train = sp.csr_matrix(train.multiply(seen[None, :]))
    state = train_mvae(train, config=MVAEConfig(hidden=16, latent=4, epochs=2, batch_size=30), seed=0,
                       item_mask=seen)
    nxt = sp.csr_matrix((rng.random((40, 120)) < 0.1).astype(np.float32))
    counts = np.asarray(train.sum(axis=0)).ravel()
    result = evaluate_period(state, nxt, seen_items=seen, item_counts=counts, seed=0)
    _, targets, kept = fold_in_split(nxt, seed=0)
    assert result["dropped_targets"] == targets[:, 100:].nnz > 0
    assert result["n_targets"] == targets[:, :100].nnz
    assert result["skipped_users"] == 40 - kept.size
    for key in ("hr@10", "ndcg@10", "ndcg@100", "psp@10", "auc"):
        assert np.isfinite(result[key])
    # scored a few rows at a time (bounded memory), the numbers are the same
    assert evaluate_period(state, nxt, seen_items=seen, item_counts=counts, seed=0, block_rows=7) == pytest.approx(result)
