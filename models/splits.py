"""The paper's static evaluation protocol (Sachdeva et al., NeurIPS 2022, §5 / appendix).

Implicit binary feedback; users with fewer than 3 interactions are dropped; each remaining user's
items are shuffled with a seeded generator and split 80/10/10 into train/validation/test, with
``n_test = max(1, round(0.1·n))``, ``n_val = round(0.1·n)`` (half rounds up) and the rest in train
(so n ≥ 3 keeps at least one training item). Validation is scored from the train rows, test from
train + validation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

MIN_INTERACTIONS = 3


@dataclass(frozen=True)
class Split:
    """Per-user split; all matrices (n_users, n_items) binary csr, dropped users have empty rows."""

    train: sp.csr_matrix
    val: sp.csr_matrix
    test: sp.csr_matrix
    val_context: sp.csr_matrix  # = train
    test_context: sp.csr_matrix  # = train + val


def binarise(x: sp.spmatrix, *, dtype: np.dtype | type = np.float32) -> sp.csr_matrix:
    """Binary csr copy of ``x``: duplicates merged, every stored non-zero set to 1, zeros removed."""
    out = sp.csr_matrix(x, dtype=dtype, copy=True)
    out.sum_duplicates()
    out.eliminate_zeros()
    out.data[:] = 1
    return out


def paper_split(interactions: sp.spmatrix, *, seed: int = 0) -> Split:
    """Split an interaction matrix with the paper protocol (module docstring).

    Args:
        interactions: (n_users, n_items) sparse matrix; any non-zero counts as one interaction.
        seed: shuffling seed.

    Returns:
        The split, same shape as ``interactions``.
    """
    x = binarise(interactions)
    n = np.diff(x.indptr)
    user = np.repeat(np.arange(x.shape[0]), n)
    keys = np.random.default_rng(seed).random(x.nnz)
    order = np.lexsort((keys, user))  # per user, a random permutation of its entries
    position = np.empty(x.nnz, dtype=np.int64)
    position[order] = np.arange(x.nnz) - x.indptr[user[order]]
    n_val = np.floor(0.1 * n + 0.5).astype(np.int64)
    n_test = np.maximum(1, n_val)
    pos_n = n[user]
    kept = pos_n >= MIN_INTERACTIONS
    is_test = kept & (position < n_test[user])
    is_val = kept & ~is_test & (position < n_test[user] + n_val[user])
    is_train = kept & ~is_test & ~is_val

    def part(mask: np.ndarray) -> sp.csr_matrix:
        return sp.csr_matrix((x.data[mask], (user[mask], x.indices[mask])), shape=x.shape, dtype=x.dtype)

    train, val, test = part(is_train), part(is_val), part(is_test)
    return Split(train=train, val=val, test=test, val_context=train, test_context=binarise(train + val))


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
