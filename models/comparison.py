"""Statistics of a comparison between strategies: intervals over seeds, paired differences, forgetting.

Claims about strategies rest on several seeds: a strategy's score per seed is its mean over the
evaluated periods, summarised by the mean and a Student-t 95% interval over seeds
(:func:`mean_ci`). Two strategies are compared on the same (seed, period) cells by a paired
bootstrap of the differences (:func:`paired_bootstrap`; Efron & Tibshirani 1993, §16).

Forgetting is read off the accuracy matrix R (GEM: Lopez-Paz & Ranzato, NeurIPS 2017, §5):
R[t, j] is the score of the model trained through period t on period j. With T the last trained
model, the average accuracy is the mean of R[T, j] over the periods it trained on, the backward
transfer BWT = mean_{j<T} (R[T, j] − R[j, j]) (negative: forgetting), and the forward transfer
FWT = mean_{j=1..T} (R[j−1, j] − b_j), b_j the score of an untrained model on period j.
"""

from __future__ import annotations

import numpy as np
from scipy import stats


def mean_ci(values: np.ndarray, *, confidence: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): Student-t interval of the mean of independent ``values`` (e.g. seeds).

    With one value the interval is the point itself (no spread to estimate).
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        raise ValueError("mean_ci needs at least one value")
    mean = float(values.mean())
    if values.size == 1:
        return mean, mean, mean
    half = stats.t.ppf(0.5 + confidence / 2, values.size - 1) * values.std(ddof=1) / np.sqrt(values.size)
    return mean, float(mean - half), float(mean + half)


def paired_bootstrap(a: np.ndarray, b: np.ndarray, *, n_boot: int = 10_000, seed: int = 0,
                     confidence: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high) of the mean paired difference a − b, percentile bootstrap over cells.

    Args:
        a, b: scores on the same cells (e.g. shape (seeds, periods)); cell i of ``a`` pairs with
            cell i of ``b``.
        n_boot: bootstrap resamples of the cells (with replacement).
        seed: seed of the resampling.
        confidence: interval coverage.
    """
    diff = (np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)).ravel()
    if diff.size == 0:
        raise ValueError("paired_bootstrap needs at least one pair")
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, diff.size, size=(n_boot, diff.size))].mean(axis=1)
    tail = (1 - confidence) / 2
    return float(diff.mean()), float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


def transfer(matrix: np.ndarray, baseline: np.ndarray | None = None) -> dict[str, float]:
    """Average accuracy, backward and forward transfer of an accuracy matrix (module docstring).

    Args:
        matrix: (T+1, ≥ T+1) R[t, j], NaN where not evaluated; rows are the models trained
            through t = 0..T, columns the periods.
        baseline: (≥ T+1,) b_j, an untrained model's score on period j (forward transfer is NaN
            without it).

    Returns:
        ``{"accuracy", "backward_transfer", "forward_transfer"}``.
    """
    r = np.asarray(matrix, dtype=np.float64)
    last = r.shape[0] - 1
    accuracy = float(np.nanmean(r[last, : last + 1]))
    backward = float(np.mean([r[last, j] - r[j, j] for j in range(last)])) if last else float("nan")
    forward = float("nan")
    if baseline is not None and last:
        forward = float(np.mean([r[j - 1, j] - baseline[j] for j in range(1, last + 1)]))
    return {"accuracy": accuracy, "backward_transfer": backward, "forward_transfer": forward}
