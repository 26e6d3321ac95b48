"""Ranking metrics of the ∞-AE / Distill-CF paper (docs/architecture.md §5), vectorised over user batches.

Conventions (Sachdeva et al., NeurIPS 2022, evaluation code):

* ``T_u`` is user u's target set and ``m_u = min(k, |T_u|)``; users with ``|T_u| = 0`` are skipped.
* Ranks are 0-based. Ties in score are broken by the lower item index, so results are
  deterministic. Items the caller excluded have score ``-inf`` and never count as hits.
* ``HR@k = |top-k ∩ T_u| / m_u`` (a truncated recall, *not* the plain hit rate).
* ``nDCG@k = Σ_{hits r<k} 1/log₂(r+2) / Σ_{r<m_u} 1/log₂(r+2)``.
* ``PSP@k``: propensity ``w_i = 1 + C·(n_i + B)^(−A)``, ``A = 0.55``, ``B = 1.5``,
  ``C = (ln N − 1)(B + 1)^A`` with ``n_i`` the training count of item i and ``N = Σ n_i``;
  ``PSP@k = (Σ_{hits} w_i / m_u) / (Σ of the m_u largest w_i over T_u)`` — the paper's double
  normalisation, whose best value is ``1/m_u``.
* ``Hit@k``: 1 if any target is in the top-k (plain hit rate).
* ``AUC``: per user, ``n_negatives`` items are sampled uniformly without replacement from the
  user's non-target, non-excluded items. ``auc`` is the pooled ROC AUC of the authors' ``eval.py``:
  the scores of all users' targets (positives) and sampled negatives go into one ranking, and
  AUC = P(positive > negative) over all pairs, across users too (ties ½, Mann–Whitney).
  ``user_auc`` is the mean over users of the same fraction within each user's own pairs.
  A target the caller excluded (score −inf) loses every comparison.

HR, nDCG, PSP and Hit are reported ×100, the AUCs as fractions. Negative sampling draws from a
counter-based hash of ``(seed, global row, item)``, so results do not depend on the batch size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

PSP_A = 0.55
PSP_B = 1.5


def propensity_weights(item_counts: np.ndarray) -> np.ndarray:
    """Inverse-propensity weights ``w_i = 1 + C·(n_i + B)^(−A)`` (Jain et al., KDD 2016).

    Args:
        item_counts: (n_items,) training interaction count per item.

    Returns:
        (n_items,) float64 weights, with ``C = (ln N − 1)(B + 1)^A`` and ``N = Σ n_i``.
    """
    counts = np.asarray(item_counts, dtype=np.float64)
    if counts.ndim != 1 or (counts < 0).any():
        raise ValueError("item_counts must be a 1-d array of non-negative counts")
    c = (np.log(counts.sum()) - 1.0) * (PSP_B + 1.0) ** PSP_A
    return 1.0 + c * (counts + PSP_B) ** (-PSP_A)


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(k) + 2.0)


def hit_ratio(hits: np.ndarray, n_targets: np.ndarray, k: int) -> np.ndarray:
    """Paper HR@k per user: ``|top-k ∩ T| / min(k, |T|)``; hits (n, ≥k) bool in rank order."""
    return hits[:, :k].sum(axis=1) / np.minimum(k, n_targets)


def ndcg(hits: np.ndarray, n_targets: np.ndarray, k: int) -> np.ndarray:
    """nDCG@k per user with binary relevance; ideal DCG over ``min(k, |T|)`` positions."""
    disc = _discounts(k)
    ideal = np.cumsum(disc)[np.minimum(k, n_targets) - 1]
    return (hits[:, :k] * disc).sum(axis=1) / ideal


def psp(hit_weights: np.ndarray, n_targets: np.ndarray, best_weights: np.ndarray, k: int) -> np.ndarray:
    """PSP@k per user (paper's double normalisation).

    Args:
        hit_weights: (n, ≥k) propensity weight of each ranked item if it is a hit, else 0.
        n_targets: (n,) target counts.
        best_weights: (n, ≥k) target weights sorted descending, zero-padded.
        k: cut-off.
    """
    m = np.minimum(k, n_targets)
    best = np.cumsum(best_weights[:, :k], axis=1)[np.arange(len(m)), m - 1]
    return hit_weights[:, :k].sum(axis=1) / m / best


def hit(hits: np.ndarray, k: int) -> np.ndarray:
    """Plain Hit@k per user: 1 if any target is among the top-k."""
    return hits[:, :k].any(axis=1).astype(np.float64)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k best items per row, best first, ties broken by the lower item index.

    Args:
        scores: (n, n_items) float scores; ``-inf`` for excluded items.
        k: 1 ≤ k ≤ n_items.

    Returns:
        (n, k) int64 item indices.
    """
    kth = -np.partition(-scores, k - 1, axis=1)[:, k - 1 : k]
    above = scores > kth
    tied = scores == kth
    room = k - above.sum(axis=1, keepdims=True)
    chosen = above | tied
    crowded = np.flatnonzero(tied.sum(axis=1) > room[:, 0])  # rows where the k-th value is shared
    if len(crowded):
        first = tied[crowded] & (np.cumsum(tied[crowded], axis=1) <= room[crowded])
        chosen[crowded] = above[crowded] | first
    idx = np.nonzero(chosen)[1].reshape(len(scores), k)  # ascending item index per row
    order = np.argsort(-np.take_along_axis(scores, idx, axis=1), axis=1, kind="stable")
    return np.take_along_axis(idx, order, axis=1)


def _hash_keys(seed: int, rows: np.ndarray, n_items: int) -> np.ndarray:
    """Counter-based uniform uint64 keys for (seed, row, item) via SplitMix64; shape (len(rows), n_items)."""
    with np.errstate(over="ignore"):
        z = (
            np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)
            + rows.astype(np.uint64)[:, None] * np.uint64(0xBF58476D1CE4E5B9)
            + np.arange(n_items, dtype=np.uint64)[None, :] * np.uint64(0x94D049BB133111EB)
        )
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def pooled_auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """ROC AUC of positive vs negative scores pooled in one ranking: P(pos > neg), ties ½.

    Counted by binary search in the sorted negatives (the Mann–Whitney U statistic), O((P + N) log N).
    """
    if len(positive) == 0 or len(negative) == 0:
        raise ValueError("pooled_auc needs at least one positive and one negative score")
    neg = np.sort(np.asarray(negative, dtype=np.float64))
    pos = np.asarray(positive, dtype=np.float64)
    below = np.searchsorted(neg, pos, side="left")
    tied = np.searchsorted(neg, pos, side="right") - below
    return float((below.sum() + 0.5 * tied.sum()) / (len(pos) * len(neg)))


def _auc_samples(
    scores: np.ndarray, target: np.ndarray, targets: sp.csr_matrix, rows: np.ndarray, *, n_negatives: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Target scores, sampled-negative scores, and per-user (wins, pairs) within each user (ties ½)."""
    keys = _hash_keys(seed, rows, scores.shape[1])
    excluded = target | np.isneginf(scores)
    keys[excluded] = np.iinfo(np.uint64).max  # sorts last; a key can equal it only with prob. 2^-64
    n_neg = min(n_negatives, scores.shape[1])
    neg = np.argpartition(keys, n_neg - 1, axis=1)[:, :n_neg]
    neg_valid = ~np.take_along_axis(excluded, neg, axis=1)
    neg_scores = np.take_along_axis(scores, neg, axis=1)
    user = np.repeat(np.arange(targets.shape[0]), np.diff(targets.indptr))
    pos = scores[user, targets.indices][:, None]
    win = ((pos > neg_scores[user]) + 0.5 * (pos == neg_scores[user])) * neg_valid[user]
    wins = np.bincount(user, weights=win.sum(axis=1), minlength=targets.shape[0])
    pairs = np.diff(targets.indptr) * neg_valid.sum(axis=1)
    return pos[:, 0], neg_scores[neg_valid], wins, pairs.astype(np.float64)


RANKING_METRICS = {"hr": hit_ratio, "ndcg": ndcg}
"""The rank-only metrics by name (``key`` ``"<name>@<k>"``): cheap enough for validation loops."""


def metric_key(name: str, k: int | None = None) -> str:
    """``("ndcg", 10)`` → ``"ndcg@10"``; ``("auc", None)`` or k = 0 → ``"auc"``."""
    return f"{name}@{k}" if k else name


def parse_metric_key(key: str) -> tuple[str, int]:
    """``"ndcg@10"`` → ``("ndcg", 10)``; a key without ``@k`` gets k = 0 (``"auc"`` → ``("auc", 0)``)."""
    name, sep, k = key.partition("@")
    if not name or (sep and not k.isdigit()) or (not sep and "@" in key):
        raise ValueError(f"metric key {key!r} must look like 'name' or 'name@k'")
    return name, int(k) if sep else 0


def _ranked_hits(scores: np.ndarray, target: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """(ranked items (n, ≤depth), hits (n, depth) bool): the top ``min(depth, n_items)`` items and
    whether each is a target; columns past the catalogue's end are misses (k may exceed it)."""
    ranked = top_k(scores, min(depth, scores.shape[1]))
    hits = np.take_along_axis(target, ranked, axis=1) & np.isfinite(np.take_along_axis(scores, ranked, axis=1))
    return ranked, _pad_columns(hits, depth)


def _pad_columns(a: np.ndarray, width: int) -> np.ndarray:
    return a if a.shape[1] >= width else np.pad(a, ((0, 0), (0, width - a.shape[1])))


def ranking_metrics(scores: np.ndarray, targets: sp.spmatrix, keys: Sequence[str]) -> dict[str, float]:
    """Means ×100 of rank-only metrics (:data:`RANKING_METRICS`) over rows with ≥ 1 target.

    One ranking serves every key; no AUC sampling, no propensities: this is the validation
    signal of every model's early stopping and λ selection.

    Args:
        scores: (n, n_items) scores, ``-inf`` for excluded items.
        targets: (n, n_items) binary targets.
        keys: e.g. ``("ndcg@100",)`` or ``("hr@100", "ndcg@10")``.

    Returns:
        key → mean ×100 (0.0 when no row has a target).
    """
    parsed = [parse_metric_key(key) for key in keys]
    if any(name not in RANKING_METRICS or k < 1 for name, k in parsed):
        raise ValueError(f"keys must be <name>@<k> with name in {sorted(RANKING_METRICS)}, got {list(keys)}")
    targets = sp.csr_matrix(targets)
    n_targets = np.diff(targets.indptr)
    keep = np.flatnonzero(n_targets > 0)
    if keep.size == 0:
        return dict.fromkeys(keys, 0.0)
    scores = np.asarray(scores)[keep]
    _, hits = _ranked_hits(scores, targets[keep].toarray() > 0, max(k for _, k in parsed))
    return {key: 100.0 * float(RANKING_METRICS[name](hits, n_targets[keep], k).mean())
            for key, (name, k) in zip(keys, parsed)}


def batch_metrics(
    scores: np.ndarray,
    targets: sp.csr_matrix,
    *,
    ks: Sequence[int] = (10, 100),
    weights: np.ndarray | None = None,
    n_negatives: int = 50,
    seed: int = 0,
    row_ids: np.ndarray | None = None,
) -> tuple[dict[str, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Per-user metric arrays for one batch of users that have at least one target.

    Args:
        scores: (n, n_items) float scores, ``-inf`` for excluded items; no NaN.
        targets: (n, n_items) binary csr; every row non-empty.
        ks: cut-offs (a cut-off beyond the catalogue ranks every item).
        weights: (n_items,) propensity weights (``propensity_weights``) or None to skip PSP.
        n_negatives: sampled negatives per user for AUC.
        seed: sampling seed.
        row_ids: (n,) global row numbers keying the negative sampling; default ``0..n-1``.

    Returns:
        (literal dict of (n,) arrays ``hr@k, ndcg@k, psp@k, hit@k, user_auc``,
        (target scores, sampled-negative scores) for ``pooled_auc``).
    """
    n_targets = np.diff(targets.indptr)
    target = targets.toarray() > 0
    kmax = max(ks)
    ranked, hits = _ranked_hits(scores, target, kmax)
    rows = np.arange(len(scores)) if row_ids is None else np.asarray(row_ids)
    pos, neg, wins, pairs = _auc_samples(scores, target, targets, rows, n_negatives=n_negatives, seed=seed)
    out = {metric_key("hr", k): hit_ratio(hits, n_targets, k) for k in ks}
    out |= {metric_key("ndcg", k): ndcg(hits, n_targets, k) for k in ks}
    if weights is not None:
        depth = ranked.shape[1]
        hit_w = _pad_columns(hits[:, :depth] * weights[ranked], kmax)
        target_w = -np.where(target, weights, 0.0)
        best_w = _pad_columns(-np.sort(np.partition(target_w, depth - 1, axis=1)[:, :depth], axis=1), kmax)
        out |= {metric_key("psp", k): psp(hit_w, n_targets, best_w, k) for k in ks}
    out |= {metric_key("hit", k): hit(hits, k) for k in ks}
    out["user_auc"] = wins / np.maximum(pairs, 1.0)
    return out, (pos, neg)


@dataclass
class MetricAccumulator:
    """Streaming form of ``evaluate``: feed user batches with ``update``, read ``result``.

    Rows are numbered in the order they are fed (this keys the negative sampling), so feeding the
    rows of a matrix in any batch sizes gives exactly ``evaluate`` on the whole matrix. Memory is
    O(1) per metric plus the scores the pooled AUC needs (targets + ``n_negatives`` per user).

    Example:
        acc = MetricAccumulator(n_items=d, item_counts=counts)
        for lo in range(0, n, 1024):
            acc.update(score_batch(lo), targets[lo:lo + 1024])
        values = acc.result()
    """

    n_items: int
    ks: Sequence[int] = (10, 100)
    item_counts: np.ndarray | None = None
    n_negatives: int = 50
    seed: int = 0
    _sums: dict[str, float] = field(default_factory=dict, init=False)
    _pooled: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list, init=False)
    _rows_seen: int = field(default=0, init=False)
    _users: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if not self.ks or min(self.ks) < 1:
            raise ValueError(f"ks must be >= 1, got {tuple(self.ks)}")
        if self.item_counts is not None and len(self.item_counts) != self.n_items:
            raise ValueError(f"item_counts has length {len(self.item_counts)}, expected n_items={self.n_items}")
        self._weights = None if self.item_counts is None else propensity_weights(self.item_counts)

    def update(self, scores: np.ndarray, targets: sp.spmatrix) -> None:
        """Add a batch: scores (b, n_items) with ``-inf`` for excluded items, targets (b, n_items) binary."""
        scores = np.asarray(scores)
        targets = sp.csr_matrix(targets)
        if scores.shape != targets.shape or scores.shape[1] != self.n_items:
            raise ValueError(f"scores {scores.shape} and targets {targets.shape} must both be (b, {self.n_items})")
        if np.isnan(scores).any():
            raise ValueError("scores contain NaN")
        targets.sum_duplicates()
        keep = np.flatnonzero(np.diff(targets.indptr) > 0)
        rows_seen, self._rows_seen = self._rows_seen, self._rows_seen + len(scores)
        if len(keep) == 0:
            return
        per_user, pooled = batch_metrics(
            scores[keep], targets[keep], ks=self.ks, weights=self._weights,
            n_negatives=self.n_negatives, seed=self.seed, row_ids=rows_seen + keep,
        )
        for name, values in per_user.items():
            self._sums[name] = self._sums.get(name, 0.0) + float(values.sum())
        self._pooled.append(pooled)
        self._users += len(keep)

    def result(self) -> dict[str, float]:
        """Averages over users with targets: HR/nDCG/PSP/Hit ×100, ``auc`` pooled, ``user_auc``, ``n_users``."""
        if self._users == 0:
            raise ValueError("no user with a non-empty target set was fed")
        pct = {name: 100.0 * total / self._users for name, total in self._sums.items() if name != "user_auc"}
        positive, negative = (np.concatenate(part) for part in zip(*self._pooled))
        return pct | {
            "auc": pooled_auc(positive, negative),
            "user_auc": self._sums["user_auc"] / self._users,
            "n_users": float(self._users),
        }


def evaluate(
    scores: np.ndarray,
    targets: sp.spmatrix,
    *,
    ks: Sequence[int] = (10, 100),
    item_counts: np.ndarray | None = None,
    n_negatives: int = 50,
    seed: int = 0,
    batch_size: int = 1024,
) -> dict[str, float]:
    """Paper metrics for a score matrix (docs/architecture.md §5).

    Args:
        scores: (n_users, n_items) scores; the caller sets excluded items (fold-in/train items,
            unseen catalogue) to ``-inf``.
        targets: (n_users, n_items) binary csr; users without targets are skipped.
        ks: cut-offs (a cut-off beyond the catalogue ranks every item).
        item_counts: (n_items,) training counts for PSP; PSP keys are omitted when None.
        n_negatives: negatives sampled per user for the AUCs.
        seed: negative-sampling seed.
        batch_size: users per vectorised batch (memory only; results do not depend on it).

    Returns:
        ``hr@k, ndcg@k, psp@k, hit@k`` (×100), ``auc`` (pooled), ``user_auc``, ``n_users``.
    """
    scores = np.asarray(scores)
    targets = sp.csr_matrix(targets)
    acc = MetricAccumulator(n_items=scores.shape[1], ks=ks, item_counts=item_counts, n_negatives=n_negatives, seed=seed)
    for lo in range(0, len(scores), batch_size):
        acc.update(scores[lo : lo + batch_size], targets[lo : lo + batch_size])
    return acc.result()
