"""Per-row hold-outs (models.splits), the test helper paper_split, storage.paper_splits.read_paper_split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from helpers import paper_split
from models.splits import hold_out_items, holdout_fold
from storage.paper_splits import read_paper_split

SHARED = Path(__file__).resolve().parents[2] / "shared"


def _interactions(seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    x = sp.random(200, 80, density=0.1, random_state=rng, format="lil")
    x[0] = 0
    x[1] = 0
    x[1, :2] = 1  # a user with 2 interactions is dropped
    x = x.tocsr()
    x.eliminate_zeros()
    return x


def test_paper_split_partitions_and_sizes() -> None:
    x = _interactions()
    s = paper_split(x, seed=3)
    n = np.diff(sp.csr_matrix(x).indptr)
    kept = n >= 3
    total = s.train + s.val + s.test
    assert total.max() == 1  # disjoint
    assert (abs(total - (x > 0).multiply(kept[:, None])) > 0).nnz == 0  # covers every kept interaction
    n_test, n_val = np.diff(s.test.indptr), np.diff(s.val.indptr)
    expected_val = np.floor(0.1 * n + 0.5)
    np.testing.assert_array_equal(n_test[kept], np.maximum(1, expected_val[kept]))
    np.testing.assert_array_equal(n_val[kept], expected_val[kept])
    assert n_test[~kept].sum() == 0 and np.diff(s.train.indptr)[kept].min() >= 1
    assert (s.val_context != s.train).nnz == 0
    assert (s.test_context != s.train + s.val).nnz == 0


def test_paper_split_is_seeded() -> None:
    x = _interactions()
    a, b, c = paper_split(x, seed=1), paper_split(x, seed=1), paper_split(x, seed=2)
    assert (a.test != b.test).nnz == 0
    assert (a.test != c.test).nnz > 0


def test_read_paper_split_reindexes_and_drops(tmp_path: Path) -> None:
    path = tmp_path / "toy.parquet"
    pl.DataFrame({
        "user": [10, 10, 10, 10, 7, 7, 7, 3],
        "item": [5, 9, 9, 2, 9, 5, 2, 4],
        "rating": [1.0] * 8,
        "split": [0, 0, 1, 2, 0, 1, 2, -1],
    }).write_parquet(path)
    s = read_paper_split(path)
    np.testing.assert_array_equal(s.user_ids, [7, 10])
    np.testing.assert_array_equal(s.item_ids, [2, 5, 9])
    np.testing.assert_array_equal(s.train.toarray(), [[0, 0, 1], [0, 1, 1]])
    np.testing.assert_array_equal(s.val.toarray(), [[0, 1, 0], [0, 0, 1]])
    np.testing.assert_array_equal(s.test.toarray(), [[1, 0, 0], [1, 0, 0]])
    np.testing.assert_array_equal(s.test_context.toarray(), [[0, 1, 1], [0, 1, 1]])
    pl.DataFrame({"user": [1], "item": [2]}).write_parquet(tmp_path / "bad.parquet")
    with pytest.raises(ValueError, match="split"):
        read_paper_split(tmp_path / "bad.parquet")


def test_read_ml1m_split_sizes() -> None:
    path = SHARED / "data" / "paper-splits" / "ml-1m.parquet"
    if not path.is_file():
        pytest.skip("../shared paper splits are absent")
    s = read_paper_split(path)
    assert s.train.shape == (6040, 3706)
    assert (s.train.nnz, s.val.nnz, s.test.nnz) == (791_718, 99_692, 108_799)


def test_hold_out_items_partitions_rows_with_the_count_rule() -> None:
    rows = sp.csr_matrix(np.array([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 1]], np.float32))
    kept, held = hold_out_items(rows, np.array([0, 1]), fraction=0.5, rng=np.random.default_rng(0))
    assert ((kept + held) != rows).nnz == 0
    assert kept.multiply(held).nnz == 0
    # n = 2 → min(1, max(1, 1)) = 1 held; n = 5 → min(4, round(2.5) = 2) = 2 held; row 2 untouched
    assert np.diff(held.indptr).tolist() == [1, 2, 0]
    with pytest.raises(ValueError, match="row 2 has 1 items"):
        hold_out_items(rows, np.array([2]), fraction=0.5, rng=np.random.default_rng(0))


def test_holdout_fold_is_a_partition_of_picked_rows() -> None:
    rng = np.random.default_rng(0)
    rows = sp.csr_matrix((rng.random((200, 60)) < 0.15).astype(np.float32))
    eligible = np.arange(rows.shape[0]) < 100
    n_eligible = int((np.diff(rows.indptr)[:100] >= 2).sum())
    train, context, targets = holdout_fold(rows, row_fraction=0.2, item_fraction=0.2, seed=0, eligible=eligible)
    assert context.shape[0] == targets.shape[0] == round(0.2 * n_eligible)
    assert train.nnz + targets.nnz == rows.nnz
    assert context.multiply(targets).nnz == 0
    assert (np.diff(targets.indptr) >= 1).all()
    _, every, _ = holdout_fold(rows, item_fraction=0.2, seed=0, eligible=eligible)
    assert every.shape[0] == n_eligible  # row_fraction 1: every eligible row
    with pytest.raises(ValueError, match="row_fraction"):
        holdout_fold(rows, row_fraction=0.0, item_fraction=0.2, seed=0)
    with pytest.raises(ValueError, match="no eligible row"):
        holdout_fold(rows, item_fraction=0.2, seed=0, eligible=np.zeros(200, dtype=bool))
