"""Evaluate M_t on a period's bags with the 80/20 fold-in protocol (docs/architecture.md §3).

The test of the continual protocol is period t+1; periods j ≤ t fill the accuracy matrix that
measures forgetting (:mod:`models.comparison`). For each row (user bag) of the period with n ≥ 2
items, a seeded random
``n_targets = min(n − 1, max(1, round(0.2·n)))`` items are the targets and the rest the fold-in
input. Rows with a single item cannot give both an input and a target: they are skipped and
counted (``skipped_users``). Fold-in items are excluded from the ranking; fold-in items the model
has never seen (not seen through t) are dropped from its input (their input weights are untrained).
Targets never seen through t are dropped and counted (``dropped_targets``); a row left without
targets is skipped by the metrics. Metrics: ``models.metrics.evaluate`` (HR/nDCG/PSP/Hit@k ×100,
pooled AUC, per-user AUC) with PSP propensities from the item counts through t.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from models.metrics import MetricAccumulator
from models.mvae import MVAEState, predict_scores
from models.splits import binarise, hold_out_items

TARGET_FRACTION = 0.2


def fold_in_split(rows: sp.csr_matrix, *, seed: int = 0,
                  target_fraction: float = TARGET_FRACTION) -> tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray]:
    """Split each row's items into fold-in input and targets (rule in the module docstring).

    Args:
        rows: (n, I) binary rows of period t+1.
        seed: seed of the per-row draws.
        target_fraction: share of a row's items that become targets.

    Returns:
        ``(context, targets, kept)``: context and targets (m, I) binary csr for the m rows with
        ≥ 2 items, and ``kept`` (m,) their row indices in ``rows``.
    """
    if not 0.0 < target_fraction < 1.0:
        raise ValueError(f"target_fraction must be in (0, 1), got {target_fraction}")
    kept = np.flatnonzero(np.diff(rows.indptr) >= 2)
    context, targets = hold_out_items(rows, kept, fraction=target_fraction, rng=np.random.default_rng(seed))
    return binarise(context[kept]), binarise(targets[kept]), kept


def _keep_columns(m: sp.csr_matrix, keep: np.ndarray) -> sp.csr_matrix:
    out = sp.csr_matrix(m @ sp.diags(keep.astype(np.float32)))
    out.eliminate_zeros()
    return out


def evaluate_period(state: MVAEState, rows: sp.csr_matrix, *, seen_items: np.ndarray,
                    item_counts: np.ndarray, seed: int = 0, ks: tuple[int, ...] = (10, 100),
                    block_rows: int = 1024) -> dict[str, float]:
    """Metrics of model M_t on a period's rows (period t+1 for the continual protocol's test).

    Args:
        state: M_t.
        rows: (n, I) binary rows of the evaluated period.
        seen_items: (I,) bool, items seen through t (others are masked and dropped as targets).
        item_counts: (I,) interaction counts through t (PSP propensities).
        seed: seed of the fold-in split and of the AUC negatives.
        ks: cut-offs.
        block_rows: rows scored at a time (memory O(block_rows × I); results do not depend on it).

    Returns:
        ``models.metrics.evaluate``'s keys plus ``dropped_targets`` (targets unseen through t),
        ``n_targets`` (targets kept) and ``skipped_users`` (rows with < 2 items).
    """
    rows = sp.csr_matrix(rows, dtype=np.float32)
    seen = np.asarray(seen_items, dtype=bool)
    if seen.shape != (rows.shape[1],) or np.shape(item_counts) != (rows.shape[1],):
        raise ValueError(f"seen_items and item_counts must have shape ({rows.shape[1]},), "
                         f"got {seen.shape} and {np.shape(item_counts)}")
    context, targets, kept = fold_in_split(rows, seed=seed)
    known_targets, known_context = _keep_columns(targets, seen), _keep_columns(context, seen)
    acc = MetricAccumulator(n_items=rows.shape[1], ks=ks, item_counts=np.asarray(item_counts), seed=seed)
    for start in range(0, known_context.shape[0], block_rows):
        block = slice(start, start + block_rows)
        acc.update(predict_scores(state, known_context[block], item_mask=seen), known_targets[block])
    result = acc.result()
    result["dropped_targets"] = float(targets.nnz - known_targets.nnz)
    result["n_targets"] = float(known_targets.nnz)
    result["skipped_users"] = float(rows.shape[0] - kept.size)
    return result
