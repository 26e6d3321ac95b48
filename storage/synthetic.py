"""Seeded synthetic interaction logs for fast tests: structure a recommender can learn.

Generative story (all draws from one ``numpy.random.Generator(seed)``):

* items have latent vectors v_i ~ N(0, I/k) and a Zipf popularity p_i ∝ rank_i^(−a) over a
  random ranking; a share of the catalogue exists from the start, the rest arrives at uniform
  times during the log (new items appear over time);
* users have two taste vectors u⁰, u¹ ~ N(0, I) and at log time τ ∈ [0, 1] the taste
  u(τ) = cos(πδτ/2)·u⁰ + sin(πδτ/2)·u¹ (drift δ: 0 = static tastes, 1 = a quarter turn);
  user activity is log-normal, so some users are far more active than others;
* an interaction at time τ by user u picks, among arrived items the user has not consumed yet,
  item i with probability ∝ exp(log p_i + w·⟨u(τ), v_i⟩) (Gumbel-max sampling);
* its rating is 3.5 + affinity + noise, rounded to half stars in [0.5, 5].
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

_SLICES = 64


def synthetic_interactions(
    *, n_users: int = 300, n_items: int = 500, n_interactions: int = 20_000, seed: int = 0,
    n_factors: int = 8, zipf_a: float = 1.0, taste_weight: float = 3.0, drift: float = 1.0,
    initial_item_share: float = 0.5, start_ts: int = 1_577_836_800, days: float = 365.0,
) -> pl.DataFrame:
    """Draw an interaction log (see the module docstring for the model).

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
    for name, value in (("n_users", n_users), ("n_items", n_items), ("n_interactions", n_interactions),
                        ("n_factors", n_factors)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if not 0 < initial_item_share <= 1:
        raise ValueError(f"initial_item_share must be in (0, 1], got {initial_item_share}")
    rng = np.random.default_rng(seed)
    item_vec = rng.normal(size=(n_items, n_factors)) / np.sqrt(n_factors)
    log_pop = -zipf_a * np.log(rng.permutation(n_items) + 1.0)
    arrival = np.where(rng.random(n_items) < initial_item_share, 0.0, rng.random(n_items))
    taste0, taste1 = rng.normal(size=(2, n_users, n_factors))
    fit0, fit1 = taste0 @ item_vec.T, taste1 @ item_vec.T   # <u(τ), v_i> is linear in u⁰, u¹
    activity = rng.lognormal(sigma=1.0, size=n_users)
    users = rng.choice(n_users, size=n_interactions, p=activity / activity.sum())
    times = np.sort(rng.random(n_interactions))
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
    ratings = np.clip(np.round(2 * (3.5 + affinity + 0.5 * rng.normal(size=n_interactions))) / 2, 0.5, 5.0)
    ts = start_ts + np.floor(times * days * 86_400).astype(np.int64)
    return pl.DataFrame({
        "user_id": users.astype(np.int64) + 1, "item_id": items + 1, "rating": ratings, "ts": ts,
    })


def write_synthetic_csv(path: str | Path, **kwargs) -> Path:
    """Write :func:`synthetic_interactions` (same keyword arguments) as a CSV with a header."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    synthetic_interactions(**kwargs).write_csv(path)
    return path
