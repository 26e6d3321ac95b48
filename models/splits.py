"""Per-row hold-outs: every fold in Relay is drawn by :func:`hold_out_items`.

- :func:`holdout_fold` is the validation fold of a training call (Distill-CF's step and λ
  selection, MVAE's early stopping): a seeded share of each eligible row's items is held out.
- :mod:`models.continual_eval` draws the 80/20 fold-in split of the next period with it.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def binarise(x: sp.spmatrix, *, dtype: np.dtype | type = np.float32) -> sp.csr_matrix:
    """Binary csr copy of ``x``: duplicates merged, every stored non-zero set to 1, zeros removed."""
    out = sp.csr_matrix(x, dtype=dtype, copy=True)
    out.sum_duplicates()
    out.eliminate_zeros()
    out.data[:] = 1
    return out


def holdout_fold(rows: sp.spmatrix, *, item_fraction: float, seed: int, row_fraction: float = 1.0,
                 eligible: np.ndarray | None = None) -> tuple[sp.csr_matrix, sp.csr_matrix, sp.csr_matrix]:
    """Seeded validation fold of training rows: hold out some items of some rows.

    Among the eligible rows with ≥ 2 items, ``row_fraction`` of them (all when 1.0; else a
    seeded sample of at least one row) give up ``item_fraction`` of their items
    (:func:`hold_out_items`); the rest stays as training data and validation context.

    Args:
        rows: (n, |I|) training rows.
        item_fraction: share of a picked row's items held out, in (0, 1).
        seed: seed of every draw.
        row_fraction: share of the eligible rows that are picked, in (0, 1].
        eligible: (n,) bool, rows that may be picked (e.g. real rows, not summaries); default all.

    Returns:
        ``(train, context, targets)``: train (n, |I|) without the held-out items; context and
        targets (m, |I|) for the m picked rows (context = their train rows).

    Raises:
        ValueError: a fraction out of range, or no eligible row has ≥ 2 items.
    """
    if not (0.0 < row_fraction <= 1.0 and 0.0 < item_fraction < 1.0):
        raise ValueError(f"row_fraction must be in (0, 1] and item_fraction in (0, 1), "
                         f"got {row_fraction}, {item_fraction}")
    rows = sp.csr_matrix(rows, dtype=np.float32)
    ok = np.diff(rows.indptr) >= 2
    if eligible is not None:
        ok &= np.asarray(eligible, dtype=bool)
    picked = np.flatnonzero(ok)
    if picked.size == 0:
        raise ValueError("no eligible row with >= 2 items to hold out")
    rng = np.random.default_rng(seed)
    if row_fraction < 1.0:
        picked = np.sort(rng.choice(picked, max(1, round(row_fraction * picked.size)), replace=False))
    train, held = hold_out_items(rows, picked, fraction=item_fraction, rng=rng)
    return train, train[picked], held[picked]


def hold_out_items(rows: sp.spmatrix, row_ids: np.ndarray, *, fraction: float,
                   rng: np.random.Generator) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Move a random share of the listed rows' items into a held-out matrix.

    The one per-row hold-out behind every fold in Relay (Distill-CF's validation fold, MVAE's
    early-stopping fold, the 80/20 fold-in of the continual protocol). Each listed row with n ≥ 2
    stored items gives up ``min(n − 1, max(1, round(fraction·n)))`` of them, drawn without
    replacement in the order of ``row_ids``, so at least one item stays and one is held out.

    Args:
        rows: (n, |I|) sparse rows; stored values are kept as they are.
        row_ids: indices of the rows to split, each with ≥ 2 stored items.
        fraction: share of a row's items held out, in (0, 1).
        rng: generator that draws the items (consumed in ``row_ids`` order).

    Returns:
        ``(kept, held)``, both (n, |I|) csr with ``kept + held == rows``.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    rows = sp.csr_matrix(rows, dtype=np.float32)
    held = np.zeros(rows.nnz, dtype=bool)
    for r in np.asarray(row_ids, dtype=np.int64):
        lo, hi = rows.indptr[r], rows.indptr[r + 1]
        n = hi - lo
        if n < 2:
            raise ValueError(f"row {r} has {n} items; a hold-out needs >= 2")
        held[lo + rng.choice(n, min(n - 1, max(1, round(fraction * n))), replace=False)] = True
    return _masked(rows, ~held), _masked(rows, held)


def _masked(rows: sp.csr_matrix, keep: np.ndarray) -> sp.csr_matrix:
    out = rows.copy()
    out.data = np.where(keep, rows.data, 0.0).astype(rows.dtype)
    out.eliminate_zeros()
    return out
