"""Synthetic logs: seeded, Zipf-skewed, new items over time, and learnable beyond popularity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import scipy.sparse as sp

from storage import catalog, ingest
from storage.synthetic import synthetic_interactions, write_synthetic_csv


def hr_at_10(scores: np.ndarray, train: np.ndarray, test: np.ndarray) -> float:
    """Mean over users with test items of |top-10 ∩ test| / min(10, |test|), train items masked."""
    ranked = np.argsort(-np.where(train > 0, -np.inf, scores), axis=1)[:, :10]
    hits = np.take_along_axis(test, ranked, axis=1).sum(axis=1)
    n = test.sum(axis=1)
    return float((hits[n > 0] / np.minimum(10, n[n > 0])).mean())


def test_seeded_and_well_formed() -> None:
    a = synthetic_interactions(n_users=50, n_items=60, n_interactions=1_000, seed=1)
    assert a.equals(synthetic_interactions(n_users=50, n_items=60, n_interactions=1_000, seed=1))
    assert not a.equals(synthetic_interactions(n_users=50, n_items=60, n_interactions=1_000, seed=2))
    assert a.columns == ["user_id", "item_id", "rating", "ts"] and len(a) == 1_000
    assert a["ts"].is_sorted() and a["rating"].is_between(0.5, 5.0).all()


def test_popularity_skew_and_new_items_over_time() -> None:
    log = synthetic_interactions(seed=0)
    counts = np.sort(log["item_id"].value_counts()["count"].to_numpy())[::-1]
    assert counts[: len(counts) // 10].sum() > 2.5 * counts.sum() / 10      # top 10% items: > 25%
    first_seen = log.group_by("item_id").agg(pl.col("ts").min())["ts"]
    assert (first_seen > log["ts"].quantile(0.5)).sum() >= 50               # items keep arriving


def test_item_knn_beats_popularity_beats_random() -> None:
    log = synthetic_interactions(seed=0)
    users, items = log["user_id"].to_numpy() - 1, log["item_id"].to_numpy() - 1
    cut = int(0.8 * len(log))
    shape = (300, 500)
    train = sp.csr_matrix((np.ones(cut), (users[:cut], items[:cut])), shape=shape).toarray() > 0
    test = sp.csr_matrix((np.ones(len(log) - cut), (users[cut:], items[cut:])), shape=shape).toarray() > 0
    test &= ~train
    co = (train.T.astype(float) @ train.astype(float))
    np.fill_diagonal(co, 0)
    popularity = np.tile(train.sum(axis=0).astype(float), (shape[0], 1))
    knn = hr_at_10(train.astype(float) @ co, train, test)
    pop = hr_at_10(popularity, train, test)
    rand = hr_at_10(np.random.default_rng(0).random(shape), train, test)
    assert knn > 1.3 * pop and pop > 2 * rand


def test_written_csv_ingests_cleanly(tmp_path: Path) -> None:
    path = write_synthetic_csv(tmp_path / "s.csv", n_users=40, n_items=50, n_interactions=800, seed=3)
    report = ingest.ingest_file(catalog.connect(":memory:"), path, dataset="s")
    assert (report.rows_ok, report.rows_rejected) == (800, 0)
