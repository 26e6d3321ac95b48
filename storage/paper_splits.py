"""Read the ∞-AE authors' own split files (``user, item, rating, [timestamp], split``).

``split`` is 0/1/2 for train/validation/test and −1 for interactions the authors dropped (users
with < 3 interactions). Kept users and items are re-indexed densely in order of their original
ids; every kept row counts as one implicit interaction (duplicates merge).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import scipy.sparse as sp

REQUIRED = ("user", "item", "split")


@dataclass(frozen=True)
class PaperSplit:
    """A published split as binary csr matrices of shape (n_users, n_items).

    Attributes:
        train, val, test: the three parts.
        val_context: rows the validation targets are scored from (= train).
        test_context: rows the test targets are scored from (= train + val).
        user_ids: (n_users,) original user id of each row.
        item_ids: (n_items,) original item id of each column.
    """

    train: sp.csr_matrix
    val: sp.csr_matrix
    test: sp.csr_matrix
    val_context: sp.csr_matrix
    test_context: sp.csr_matrix
    user_ids: np.ndarray
    item_ids: np.ndarray


def _binary(user: np.ndarray, item: np.ndarray, shape: tuple[int, int], dtype: np.dtype) -> sp.csr_matrix:
    m = sp.csr_matrix((np.ones(len(user), dtype=dtype), (user, item)), shape=shape)
    m.sum_duplicates()
    m.data[:] = 1
    return m


def read_paper_split(path: str | Path, *, dtype: np.dtype | type = np.float32) -> PaperSplit:
    """Load a paper-split parquet file.

    Args:
        path: parquet file with integer columns ``user``, ``item``, ``split``.
        dtype: value dtype of the matrices.

    Returns:
        The split with dense re-indexed users/items.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path {path} does not exist")
    columns = pl.read_parquet_schema(path)
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise ValueError(f"path {path} lacks columns {missing}; has {list(columns)}")
    df = pl.read_parquet(path, columns=list(REQUIRED)).filter(pl.col("split") >= 0)
    bad = df.filter(~pl.col("split").is_in([0, 1, 2])).height
    if bad:
        raise ValueError(f"path {path}: {bad} rows have a split value outside -1, 0, 1, 2")
    user_ids, user = np.unique(df["user"].to_numpy(), return_inverse=True)
    item_ids, item = np.unique(df["item"].to_numpy(), return_inverse=True)
    split = df["split"].to_numpy()
    shape = (len(user_ids), len(item_ids))
    dtype = np.dtype(dtype)
    train, val, test = (_binary(user[split == s], item[split == s], shape, dtype) for s in (0, 1, 2))
    context = _binary(*np.nonzero(train + val), shape, dtype)
    return PaperSplit(train=train, val=val, test=test, val_context=train, test_context=context,
                      user_ids=user_ids, item_ids=item_ids)
