"""Synthetic logs: seeded, Zipf-skewed, new items over time, drifting, and learnable beyond popularity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from storage import catalog, ingest
from storage.synthetic import GENERATORS, fast_synthetic_interactions, synthetic_interactions, write_synthetic_csv


def hr_at_10(scores: np.ndarray, train: np.ndarray, test: np.ndarray) -> float:
    """Mean over users with test items of |top-10 ∩ test| / min(10, |test|), train items masked."""
    ranked = np.argsort(-np.where(train > 0, -np.inf, scores), axis=1)[:, :10]
    hits = np.take_along_axis(test, ranked, axis=1).sum(axis=1)
    n = test.sum(axis=1)
    return float((hits[n > 0] / np.minimum(10, n[n > 0])).mean())


def repeat_share(log: pl.DataFrame) -> float:
    """Share of rows whose (user, item) pair occurred earlier in the log."""
    return 1.0 - log.select(pl.struct("user_id", "item_id").n_unique()).item() / len(log)


@pytest.mark.parametrize("mode", GENERATORS)
def test_seeded_and_well_formed(mode: str) -> None:
    generate = GENERATORS[mode]
    a = generate(n_users=50, n_items=60, n_interactions=1_000, seed=1)
    assert a.equals(generate(n_users=50, n_items=60, n_interactions=1_000, seed=1))
    assert not a.equals(generate(n_users=50, n_items=60, n_interactions=1_000, seed=2))
    assert a.columns == ["user_id", "item_id", "rating", "ts"] and len(a) == 1_000
    assert a["ts"].is_sorted() and a["rating"].is_between(0.5, 5.0).all()
    assert a["user_id"].is_between(1, 50).all() and a["item_id"].is_between(1, 60).all()


def test_exact_generator_is_unchanged() -> None:
    """The tests' logs stay the same for the same arguments (figures of the original generator)."""
    log = synthetic_interactions(n_users=50, n_items=60, n_interactions=1_000, seed=1)
    assert (log["user_id"].sum(), log["item_id"].sum(), int((2 * log["rating"]).sum()), log["ts"].sum()) == (
        22371, 29820, 8058, 1593618854658)
    assert log.row(0) == (27, 23, 5.0, 1577848682) and log.row(-1) == (4, 21, 4.5, 1609357527)


@pytest.mark.parametrize("mode", GENERATORS)
def test_popularity_skew_and_new_items_over_time(mode: str) -> None:
    log = GENERATORS[mode](seed=0)
    counts = np.sort(log["item_id"].value_counts()["count"].to_numpy())[::-1]
    assert counts[: len(counts) // 10].sum() > 2.5 * counts.sum() / 10      # top 10% items: > 25%
    first_seen = log.group_by("item_id").agg(pl.col("ts").min())["ts"]
    assert (first_seen > log["ts"].quantile(0.5)).sum() >= 50               # items keep arriving


@pytest.mark.parametrize(("mode", "n_users", "n_interactions", "margin"), [
    ("exact", 300, 20_000, 1.3), ("fast", 1_000, 30_000, 1.15)])
def test_item_knn_beats_popularity_beats_random(mode: str, n_users: int, n_interactions: int, margin: float) -> None:
    log = GENERATORS[mode](n_users=n_users, n_items=500, n_interactions=n_interactions, seed=0)
    users, items = log["user_id"].to_numpy() - 1, log["item_id"].to_numpy() - 1
    cut = int(0.8 * len(log))
    shape = (n_users, 500)
    train = sp.csr_matrix((np.ones(cut), (users[:cut], items[:cut])), shape=shape).toarray() > 0
    test = sp.csr_matrix((np.ones(len(log) - cut), (users[cut:], items[cut:])), shape=shape).toarray() > 0
    test &= ~train
    co = (train.T.astype(float) @ train.astype(float))
    np.fill_diagonal(co, 0)
    popularity = np.tile(train.sum(axis=0).astype(float), (shape[0], 1))
    knn = hr_at_10(train.astype(float) @ co, train, test)
    pop = hr_at_10(popularity, train, test)
    rand = hr_at_10(np.random.default_rng(0).random(shape), train, test)
    assert knn > margin * pop and pop > 2 * rand


def early_late_distance(log: pl.DataFrame, share: float = 0.25) -> float:
    """Total variation between the item distributions of the first and the last ``share`` of the
    log, both restricted to the users active in both."""
    k = int(share * len(log))
    early, late = log[:k], log[-k:]
    users = set(early["user_id"].to_list()) & set(late["user_id"].to_list())
    e, lt = (part.filter(pl.col("user_id").is_in(list(users)))["item_id"].to_numpy() for part in (early, late))
    width = max(e.max(), lt.max()) + 1
    gap = np.bincount(e, minlength=width) / e.size - np.bincount(lt, minlength=width) / lt.size
    return 0.5 * float(np.abs(gap).sum())


@pytest.mark.parametrize(("max_redraws", "ratio"), [(0, 3.0), (50, 1.2)])
def test_fast_tastes_drift(max_redraws: int, ratio: float) -> None:
    """The same users' early and late items differ more when tastes turn. With repeats allowed
    (no redraws), drift 0 leaves only sampling noise; with redraws, users also move on from the
    items they already hold, drift or not."""
    kwargs = dict(n_users=1_000, n_items=200, n_interactions=40_000, seed=0, initial_item_share=1.0,
                  max_redraws=max_redraws)
    static = early_late_distance(fast_synthetic_interactions(drift=0.0, **kwargs))
    turning = early_late_distance(fast_synthetic_interactions(drift=1.0, **kwargs))
    assert turning > ratio * static


def test_fast_redraws_keep_a_users_items_distinct() -> None:
    kwargs = dict(n_users=200, n_items=2_000, n_interactions=10_000, seed=0)
    with_repeats = repeat_share(fast_synthetic_interactions(max_redraws=0, **kwargs))
    redrawn = repeat_share(fast_synthetic_interactions(**kwargs))
    assert with_repeats > 0.3 and redrawn < 0.1 * with_repeats


def test_fast_scales_to_many_users_and_items() -> None:
    """Users × items (2·10¹⁰ cells) beyond what a table of consumed items could hold."""
    log = fast_synthetic_interactions(n_users=1_000_000, n_items=20_000, n_interactions=50_000, seed=0)
    assert len(log) == 50_000 and repeat_share(log) == 0.0
    assert log["item_id"].max() <= 20_000 and log["user_id"].max() <= 1_000_000


@pytest.mark.parametrize("mode", GENERATORS)
def test_written_csv_ingests_cleanly(tmp_path: Path, mode: str) -> None:
    path = write_synthetic_csv(tmp_path / "s.csv", mode=mode, n_users=40, n_items=50, n_interactions=800, seed=3)
    report = ingest.ingest_file(catalog.connect(":memory:"), path, dataset="s")
    assert (report.rows_ok, report.rows_rejected) == (800, 0)


@pytest.mark.parametrize(("call", "message"), [
    (lambda: write_synthetic_csv("x.csv", mode="slow"), "mode"),
    (lambda: fast_synthetic_interactions(n_clusters=0), "n_clusters"),
    (lambda: fast_synthetic_interactions(max_redraws=-1), "max_redraws"),
    (lambda: fast_synthetic_interactions(n_interactions=0), "n_interactions"),
    (lambda: synthetic_interactions(initial_item_share=0.0), "initial_item_share"),
])
def test_bad_arguments_are_named(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
