"""Golden hand-computed cases for models.metrics (docs/architecture.md §5)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from models.metrics import (MetricAccumulator, evaluate, metric_key, parse_metric_key, pooled_auc,
                            propensity_weights, ranking_metrics, top_k)

L2_3 = 1.0 / math.log2(3)
L2_6 = 1.0 / math.log2(6)


def _targets(rows: list[list[int]], n_items: int) -> sp.csr_matrix:
    dense = np.zeros((len(rows), n_items))
    for u, items in enumerate(rows):
        dense[u, items] = 1
    return sp.csr_matrix(dense)


def test_hr_ndcg_hit_golden() -> None:
    scores = np.array([[0.9, 0.8, 0.7, 0.6, 0.5, 0.4]])
    out = evaluate(scores, _targets([[1, 4]], 6), ks=(2, 5))
    assert out["hr@2"] == pytest.approx(50.0)  # 1 hit / min(2, 2)
    assert out["ndcg@2"] == pytest.approx(100 * L2_3 / (1 + L2_3))
    assert out["hr@5"] == pytest.approx(100.0)
    assert out["ndcg@5"] == pytest.approx(100 * (L2_3 + L2_6) / (1 + L2_3))
    assert out["hit@2"] == pytest.approx(100.0)
    assert out["n_users"] == 1


def test_ties_break_by_lower_item_index() -> None:
    scores = np.array([[0.5, 0.9, 0.5, 0.5, 0.1], [0.5, 0.9, 0.5, 0.5, 0.1]])
    np.testing.assert_array_equal(top_k(scores, 3), [[1, 0, 2], [1, 0, 2]])
    out = evaluate(scores, _targets([[2], [0]], 5), ks=(2,))
    # user 0: item 2 loses the tie to item 0 -> miss; user 1: item 0 at rank 1 -> hit.
    assert out["hr@2"] == pytest.approx(50.0)
    assert out["ndcg@2"] == pytest.approx(100 * (0 + L2_3) / 2)


def test_fewer_targets_than_k_and_excluded_items() -> None:
    scores = np.array([[0.1, 0.2, 0.3, 0.4, -np.inf, 0.0]])
    # |T| = 2 < k = 4: HR divides by 2; item 4 is excluded (-inf) and never a hit.
    out = evaluate(scores, _targets([[0, 4]], 6), ks=(4, 6))
    assert out["hr@4"] == pytest.approx(50.0)  # item 0 is ranked 3rd (0-based), item 4 excluded
    assert out["ndcg@4"] == pytest.approx(100 * (1 / math.log2(5)) / (1 + L2_3))
    assert out["hr@6"] == pytest.approx(50.0)


def test_psp_golden() -> None:
    counts = np.array([10, 3, 0, 7, 1, 4])
    n_total = counts.sum()
    c = (math.log(n_total) - 1) * 2.5**0.55
    w = [1 + c * (n + 1.5) ** -0.55 for n in counts]
    np.testing.assert_allclose(propensity_weights(counts), w)
    scores = np.array([[0.9, 0.8, 0.7, 0.6, 0.5, 0.4]])
    out = evaluate(scores, _targets([[1, 4, 5]], 6), ks=(2,), item_counts=counts)
    best = sorted([w[1], w[4], w[5]], reverse=True)[:2]
    assert out["psp@2"] == pytest.approx(100 * (w[1] / 2) / sum(best))


def test_auc_golden_pooled_and_per_user() -> None:
    scores = np.array([[0.9, 0.8, 0.7, 0.6, 0.5, 0.4], [0.9, 0.1, 0.2, 0.3, 0.3, 0.5]])
    targets = _targets([[1, 4], [0, 4]], 6)
    out = evaluate(scores, targets, ks=(2,), n_negatives=50)
    # per user: user 0's negatives {0,2,3,5}: item 1 beats 3 of 4, item 4 beats 1 of 4 -> 4/8;
    # user 1's negatives {1,2,3,5}: item 0 beats 4; item 4 (0.3) beats 1, 2, ties 3 (½) -> 6.5/8.
    # pooled across users: positives .8 .5 .9 .3 vs negatives .9 .7 .6 .4 .1 .2 .3 .5
    # -> 7 + 4.5 + 7.5 + 2.5 = 21.5 of 32 pairs.
    assert out["auc"] == pytest.approx(21.5 / 32)
    assert out["user_auc"] == pytest.approx((0.5 + 6.5 / 8) / 2)


def test_auc_samples_negatives_outside_targets_and_exclusions() -> None:
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(30, 40))
    scores[:, :5] = -np.inf  # excluded: never sampled
    targets = sp.csr_matrix((rng.random((30, 40)) < 0.1) & np.isfinite(scores))
    perfect = np.where(targets.toarray() > 0, 10.0, scores)
    assert evaluate(perfect, targets, ks=(5,), n_negatives=3)["auc"] == pytest.approx(1.0)


def test_skips_users_without_targets_and_rejects_nan() -> None:
    scores = np.array([[0.3, 0.2, 0.1], [0.1, 0.2, 0.3]])
    out = evaluate(scores, _targets([[0], []], 3), ks=(1,))
    assert out["n_users"] == 1 and out["hr@1"] == pytest.approx(100.0)
    with pytest.raises(ValueError, match="NaN"):
        evaluate(np.array([[np.nan, 0.0, 1.0]]), _targets([[0]], 3), ks=(1,))


def _reference(scores: np.ndarray, targets: sp.csr_matrix, k: int, counts: np.ndarray) -> dict[str, float]:
    """Loop-per-user reference straight from docs/architecture.md §5 (stable sort on -score)."""
    w = propensity_weights(counts)
    sums = {"hr": 0.0, "ndcg": 0.0, "psp": 0.0, "hit": 0.0}
    users = 0
    for u in range(scores.shape[0]):
        t = set(targets[u].indices)
        if not t:
            continue
        users += 1
        ranked = np.argsort(-scores[u], kind="stable")[:k]
        m = min(k, len(t))
        hits = [r for r, i in enumerate(ranked) if i in t]
        sums["hr"] += len(hits) / m
        sums["ndcg"] += sum(1 / math.log2(r + 2) for r in hits) / sum(1 / math.log2(r + 2) for r in range(m))
        best = sorted((w[i] for i in t), reverse=True)[:m]
        sums["psp"] += sum(w[ranked[r]] for r in hits) / m / sum(best)
        sums["hit"] += bool(hits)
    return {f"{name}@{k}": 100 * v / users for name, v in sums.items()}


def test_vectorised_matches_loop_reference_and_batching() -> None:
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 6, size=(57, 30)).astype(float)  # many ties
    targets = sp.csr_matrix(rng.random((57, 30)) < 0.15)
    counts = rng.integers(0, 50, size=30)
    whole = evaluate(scores, targets, ks=(5,), item_counts=counts, seed=3)
    for name, value in _reference(scores, targets, 5, counts).items():
        assert whole[name] == pytest.approx(value), name
    batched = evaluate(scores, targets, ks=(5,), item_counts=counts, seed=3, batch_size=8)
    assert batched == pytest.approx(whole)
    acc = MetricAccumulator(n_items=30, ks=(5,), item_counts=counts, seed=3)
    for lo in range(0, 57, 20):
        acc.update(scores[lo : lo + 20], targets[lo : lo + 20])
    assert acc.result() == pytest.approx(whole)


def test_pooled_auc_equals_the_rank_sum_statistic() -> None:
    import scipy.stats

    rng = np.random.default_rng(3)
    pos, neg = rng.integers(0, 20, 300).astype(float), rng.integers(0, 20, 500).astype(float)  # many ties
    ranks = scipy.stats.rankdata(np.concatenate([pos, neg]))
    u = ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2
    assert pooled_auc(pos, neg) == pytest.approx(u / (len(pos) * len(neg)), rel=1e-12)


def test_cutoff_beyond_the_catalogue_ranks_every_item() -> None:
    """A catalogue of 6 items with k = 10 and 100: every item is ranked, nothing fails."""
    scores = np.array([[0.9, 0.8, 0.7, 0.6, 0.5, 0.4], [0.1, 0.2, 0.3, 0.4, 0.5, -np.inf]])
    targets = _targets([[1, 4], [5, 0]], 6)
    out = evaluate(scores, targets, ks=(10, 100), item_counts=np.arange(1, 7))
    assert out["hr@10"] == pytest.approx(75.0)  # user 0: both found; user 1: item 5 is excluded
    assert out["hr@100"] == out["hr@10"]
    assert out["ndcg@10"] == pytest.approx(100 * ((L2_3 + L2_6) + L2_6) / (1 + L2_3) / 2)  # item 0 at rank 4
    assert 0 < out["psp@10"] <= 100


def test_ranking_metrics_equal_the_full_evaluation() -> None:
    rng = np.random.default_rng(4)
    scores = rng.random((40, 30))
    targets = sp.csr_matrix((rng.random((40, 30)) < 0.1).astype(np.float32))
    full = evaluate(scores, targets, ks=(5, 10))
    cheap = ranking_metrics(scores, targets, ("ndcg@10", "hr@5"))
    assert cheap == pytest.approx({"ndcg@10": full["ndcg@10"], "hr@5": full["hr@5"]})
    assert ranking_metrics(scores, sp.csr_matrix((40, 30)), ("ndcg@10",)) == {"ndcg@10": 0.0}
    with pytest.raises(ValueError, match="psp@10"):
        ranking_metrics(scores, targets, ("psp@10",))


def test_metric_keys_round_trip() -> None:
    assert metric_key("psp", 100) == "psp@100" and metric_key("auc") == "auc"
    assert parse_metric_key("psp@100") == ("psp", 100)
    assert parse_metric_key("user_auc") == ("user_auc", 0)
    for bad in ("ndcg@", "@10", "ndcg@x"):
        with pytest.raises(ValueError, match="metric key"):
            parse_metric_key(bad)
