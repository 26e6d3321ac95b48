"""Seeded synthetic interaction logs with structure a recommender can learn: test logs to 10M-row logs.

Generative story (all draws from one ``numpy.random.Generator(seed)``):

* items have latent vectors v_i ~ N(0, I/k) and a Zipf popularity p_i ∝ rank_i^(−a) over a
  random ranking; a share of the catalogue exists from the start, the rest arrives at uniform
  times during the log (new items appear over time);
* users have two taste vectors u⁰, u¹ ~ N(0, I) and at log time τ ∈ [0, 1] the taste
  u(τ) = cos(πδτ/2)·u⁰ + sin(πδτ/2)·u¹ (drift δ: 0 = static tastes, 1 = a quarter turn);
  user activity is log-normal, so some users are far more active than others;
* an interaction at time τ by user u picks, among arrived items the user has not consumed yet,
  item i with probability ∝ exp(log p_i + w·⟨u(τ), v_i⟩);
* its rating is 3.5 + affinity + noise, rounded to half stars in [0.5, 5].

Two generators tell this story (:data:`GENERATORS`):

* ``exact`` (:func:`synthetic_interactions`, the tests' logs): every user has tastes of their own;
  the log is cut into 64 slices of equal count and each interaction draws one Gumbel per item
  (Gumbel-max sampling among the items not consumed yet): O(rows × items) time and a
  users × items table of consumed items, fine up to ~10⁵ rows.
* ``fast`` (:func:`fast_synthetic_interactions`, logs of millions of rows): users share one of K
  taste pairs (each user belongs to a uniformly drawn cluster). For each (cluster, slice) the
  categorical over the items arrived by the slice's start is built once, O(K·S·|I|), and every
  interaction's item is drawn by inverse CDF (binary search in the cumulative sums),
  O(rows·log(K·|I|)), plus O(S·rows) copying to keep the drawn (user, item) keys sorted; no
  rows × items or users × items work. Repeats: a drawn item the user already holds (from an earlier slice or
  earlier in the slice) is redrawn from the same categorical, up to ``max_redraws`` times, so a
  user's items are distinct as in the exact generator (sampling without replacement by
  rejection); a row still repeating after that is kept as a re-consumption (a user who has
  exhausted what their cluster's taste favours: w = 3 puts most of a cluster's mass on a few
  dozen items). With the defaults 0.24% of a 1M-row log (40k users, 20k items) and 0.52% of a
  10M-row log (400k users, 50k items) stay repeats; 2.1% of a 400k-row log of 16k users and 5k
  items, whose most active users want more items than their taste reaches.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

_SLICES = 64


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")


def _check_share(initial_item_share: float) -> None:
    if not 0 < initial_item_share <= 1:
        raise ValueError(f"initial_item_share must be in (0, 1], got {initial_item_share}")


def _draw_items(rng: np.random.Generator, n_items: int, n_factors: int, zipf_a: float,
                initial_item_share: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Item vectors (|I|, k), log Zipf popularity (|I|,) and arrival times in [0, 1) (|I|,)."""
    item_vec = rng.normal(size=(n_items, n_factors)) / np.sqrt(n_factors)
    log_pop = -zipf_a * np.log(rng.permutation(n_items) + 1.0)
    arrival = np.where(rng.random(n_items) < initial_item_share, 0.0, rng.random(n_items))
    return item_vec, log_pop, arrival


def _draw_events(rng: np.random.Generator, n_users: int, n_interactions: int) -> tuple[np.ndarray, np.ndarray]:
    """Who acts (log-normal activity) and when (sorted times in [0, 1)), one entry per interaction."""
    activity = rng.lognormal(sigma=1.0, size=n_users)
    users = rng.choice(n_users, size=n_interactions, p=activity / activity.sum())
    return users, np.sort(rng.random(n_interactions))


def _frame(rng: np.random.Generator, users: np.ndarray, items: np.ndarray, affinity: np.ndarray,
           times: np.ndarray, start_ts: int, days: float) -> pl.DataFrame:
    """The log: half-star ratings 3.5 + affinity + N(0, 0.5²) in [0.5, 5], unix-second timestamps."""
    ratings = np.clip(np.round(2 * (3.5 + affinity + 0.5 * rng.normal(size=users.size))) / 2, 0.5, 5.0)
    ts = start_ts + np.floor(times * days * 86_400).astype(np.int64)
    return pl.DataFrame({
        "user_id": users.astype(np.int64) + 1, "item_id": items.astype(np.int64) + 1, "rating": ratings, "ts": ts,
    })


def synthetic_interactions(
    *, n_users: int = 300, n_items: int = 500, n_interactions: int = 20_000, seed: int = 0,
    n_factors: int = 8, zipf_a: float = 1.0, taste_weight: float = 3.0, drift: float = 1.0,
    initial_item_share: float = 0.5, start_ts: int = 1_577_836_800, days: float = 365.0,
) -> pl.DataFrame:
    """Draw an interaction log with per-user tastes (the ``exact`` generator, module docstring).

    Args:
        n_users, n_items, n_interactions: sizes (every user/item id may not occur).
        seed: seed of every random draw.
        n_factors: latent dimension k.
        zipf_a: Zipf exponent of item popularity.
        taste_weight: w, how much taste matters against popularity.
        drift: δ, how far tastes turn over the log.
        initial_item_share: share of items available from the first second.
        start_ts: unix time of the first possible interaction (default 2020-01-01 UTC).
        days: length of the log.

    Returns:
        DataFrame with columns user_id, item_id (int64, 1-based), rating (float64), ts (int64
        unix seconds), sorted by ts.
    """
    _check_positive(n_users=n_users, n_items=n_items, n_interactions=n_interactions, n_factors=n_factors)
    _check_share(initial_item_share)
    rng = np.random.default_rng(seed)
    item_vec, log_pop, arrival = _draw_items(rng, n_items, n_factors, zipf_a, initial_item_share)
    taste0, taste1 = rng.normal(size=(2, n_users, n_factors))
    fit0, fit1 = taste0 @ item_vec.T, taste1 @ item_vec.T   # <u(τ), v_i> is linear in u⁰, u¹
    users, times = _draw_events(rng, n_users, n_interactions)
    consumed = np.zeros((n_users, n_items), dtype=bool)
    items = np.empty(n_interactions, dtype=np.int64)
    affinity = np.empty(n_interactions)
    for rows in np.array_split(np.arange(n_interactions), _SLICES):
        if rows.size == 0:
            continue
        angle = np.pi * drift * times[rows[-1]] / 2
        fit = np.cos(angle) * fit0[users[rows]] + np.sin(angle) * fit1[users[rows]]
        logits = log_pop + taste_weight * fit
        arrived = arrival <= times[rows[0]]
        allowed = arrived & ~consumed[users[rows]]
        allowed[~allowed.any(axis=1)] = arrived   # a user who consumed everything may repeat
        gumbel = rng.gumbel(size=logits.shape)
        pick = np.argmax(np.where(allowed, logits + gumbel, -np.inf), axis=1)
        items[rows] = pick
        affinity[rows] = fit[np.arange(rows.size), pick]
        consumed[users[rows], pick] = True
    return _frame(rng, users, items, affinity, times, start_ts, days)


def fast_synthetic_interactions(
    *, n_users: int = 300, n_items: int = 500, n_interactions: int = 20_000, seed: int = 0,
    n_factors: int = 8, zipf_a: float = 1.0, taste_weight: float = 3.0, drift: float = 1.0,
    initial_item_share: float = 0.5, start_ts: int = 1_577_836_800, days: float = 365.0,
    n_clusters: int = 64, n_slices: int = 64, max_redraws: int = 50,
) -> pl.DataFrame:
    """Draw an interaction log in time linear in its rows (the ``fast`` generator, module docstring).

    Same story and arguments as :func:`synthetic_interactions` (not the same draws), except that
    users share the tastes of ``n_clusters`` clusters. Memory: O(rows + n_clusters·|I|).

    Args:
        n_users, n_items, n_interactions, seed, n_factors, zipf_a, taste_weight, drift,
            initial_item_share, start_ts, days: as in :func:`synthetic_interactions`.
        n_clusters: K, taste clusters of users.
        n_slices: S, equal-count time slices; a slice's interactions share the taste angle of its
            last interaction and the items arrived by its first.
        max_redraws: redraws of a repeated (user, item) before it is kept as a repeat.

    Returns:
        DataFrame with columns user_id, item_id (int64, 1-based), rating (float64), ts (int64
        unix seconds), sorted by ts.
    """
    _check_positive(n_users=n_users, n_items=n_items, n_interactions=n_interactions, n_factors=n_factors,
                    n_clusters=n_clusters, n_slices=n_slices)
    _check_share(initial_item_share)
    if max_redraws < 0:
        raise ValueError(f"max_redraws must be >= 0, got {max_redraws}")
    rng = np.random.default_rng(seed)
    item_vec, log_pop, arrival = _draw_items(rng, n_items, n_factors, zipf_a, initial_item_share)
    taste0, taste1 = rng.normal(size=(2, n_clusters, n_factors))
    cluster = rng.integers(n_clusters, size=n_users)
    users, times = _draw_events(rng, n_users, n_interactions)
    items = np.empty(n_interactions, dtype=np.int64)
    affinity = np.empty(n_interactions)
    held = np.empty(0, dtype=np.int64)  # sorted keys user·|I| + item of the rows drawn so far
    edges = np.linspace(0, n_interactions, min(n_slices, n_interactions) + 1).astype(np.int64)
    for lo, hi in zip(edges[:-1], edges[1:]):
        available = np.flatnonzero(arrival <= max(times[lo], arrival.min()))
        angle = np.pi * drift * times[hi - 1] / 2
        fit = (np.cos(angle) * taste0 + np.sin(angle) * taste1) @ item_vec[available].T   # (K, A)
        sampler = _ClusterSampler(log_pop[available] + taste_weight * fit, cluster[users[lo:hi]], rng)
        col, new_keys = _distinct_draws(sampler, users[lo:hi].astype(np.int64) * n_items, available, held,
                                        max_redraws)
        items[lo:hi] = available[col]
        affinity[lo:hi] = fit[sampler.clusters, col]
        held = _merge_sorted(held, new_keys)
    return _frame(rng, users, items, affinity, times, start_ts, days)


class _ClusterSampler:
    """Inverse-CDF draws from one categorical per cluster over the same A columns.

    Row k of the cumulative sums, normalised to (0, 1] and shifted by k, lies in (k, k + 1], so all
    rows form one sorted array: a draw for cluster k is a binary search for k + U, U ~ U[0, 1).
    """

    def __init__(self, logits: np.ndarray, clusters: np.ndarray, rng: np.random.Generator) -> None:
        cdf = np.cumsum(np.exp(logits - logits.max(axis=1, keepdims=True)), axis=1)
        self.flat = (cdf / cdf[:, -1:] + np.arange(cdf.shape[0])[:, None]).ravel()
        self.width, self.clusters, self.rng = cdf.shape[1], clusters, rng

    def draw(self, rows: np.ndarray) -> np.ndarray:
        """(len(rows),) columns drawn for the given rows (positions in ``clusters``)."""
        k = self.clusters[rows]
        target = k + self.rng.random(rows.size)
        order = np.argsort(target)   # sorted needles: the binary searches stay in cache
        pos = np.empty(rows.size, dtype=np.int64)
        pos[order] = np.searchsorted(self.flat, target[order], side="right")
        return np.minimum(pos - k * self.width, self.width - 1)   # k + U may round up to k + 1


def _distinct_draws(sampler: _ClusterSampler, user_base: np.ndarray, available: np.ndarray, held: np.ndarray,
                    max_redraws: int) -> tuple[np.ndarray, np.ndarray]:
    """Columns for a slice's rows, redrawing (user, item) pairs already held (module docstring).

    Args:
        sampler: the slice's categoricals.
        user_base: (m,) user·|I| of the slice's rows, in time order.
        available: (A,) item of each column.
        held: sorted keys of the earlier slices' rows.
        max_redraws: redraws before a repeat is kept.

    Returns:
        (m,) columns and the (m,) keys of the slice's rows.
    """
    col = np.zeros(user_base.size, dtype=np.int64)
    kept = np.empty(0, dtype=np.int64)   # sorted keys accepted in this slice
    todo = np.arange(user_base.size)
    for attempt in range(max_redraws + 1):
        col[todo] = sampler.draw(todo)
        keys = user_base[todo] + available[col[todo]]
        fresh = np.ones(todo.size, dtype=bool)
        if attempt < max_redraws:
            order = np.argsort(keys, kind="stable")   # equal keys stay in time order
            ordered = keys[order]
            first = np.r_[True, ordered[1:] != ordered[:-1]]   # earliest row of a key in this round
            fresh[order] = first & ~_contains(held, ordered) & ~_contains(kept, ordered)
        kept = _merge_sorted(kept, keys[fresh])
        todo = todo[~fresh]
        if todo.size == 0:
            break
    return col, kept


def _contains(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """(len(keys),) bool: each key occurs in ``sorted_keys``."""
    if sorted_keys.size == 0:
        return np.zeros(keys.size, dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_keys, keys), sorted_keys.size - 1)
    return sorted_keys[pos] == keys


def _merge_sorted(sorted_keys: np.ndarray, new: np.ndarray) -> np.ndarray:
    """``sorted_keys`` with ``new`` inserted in order, O(len(sorted_keys) + len(new)·log)."""
    new = np.sort(new)
    return np.insert(sorted_keys, np.searchsorted(sorted_keys, new), new)


GENERATORS: dict[str, Callable[..., pl.DataFrame]] = {
    "exact": synthetic_interactions, "fast": fast_synthetic_interactions}
"""The generators by name (module docstring): ``exact`` for test logs, ``fast`` for big ones."""


def write_synthetic_csv(path: str | Path, *, mode: str = "exact", **kwargs) -> Path:
    """Write a generated log as a CSV with a header.

    Args:
        path: output file (its folder is created).
        mode: a name in :data:`GENERATORS`.
        **kwargs: the generator's keyword arguments.
    """
    if mode not in GENERATORS:
        raise ValueError(f"mode must be one of {', '.join(GENERATORS)}; got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    GENERATORS[mode](**kwargs).write_csv(path)
    return path
