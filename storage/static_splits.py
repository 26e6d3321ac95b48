"""Static train/validation/test splits for the data-centric experiments, from any supported file.

A paper-split parquet file (a ``split`` column) is read as the authors split it
(:func:`storage.paper_splits.read_paper_split`). Any other interaction log (CSV, TSV, RecBole
``.inter``, parquet without ``split``) gets the same protocol drawn with a seed: every interaction
counts once (duplicates merge), users with fewer than 3 interactions are dropped, and each user's
items are shuffled and split 80/10/10 with ``n_test = max(1, round(0.1·n))`` and
``n_val = round(0.1·n)`` (halves round up), the rest in train.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import scipy.sparse as sp

from storage.paper_splits import PaperSplit, read_paper_split
from storage.readers import ALIASES, detect_format, normalise_name

MIN_INTERACTIONS = 3
_SEPARATORS = {"csv": ",", "tsv": "\t", "recbole": "\t"}


def read_interactions(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(user ids, item ids) of every row of a log with a header naming the user and item columns
    (the ingest's aliases: ``userId``, ``user_id:token``, ``movieId``, ``item_id``, …), as strings."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path {path} does not exist")
    fmt = detect_format(path)
    if fmt == "parquet":
        frame = pl.read_parquet(path)
    elif fmt in _SEPARATORS:
        frame = pl.read_csv(path, separator=_SEPARATORS[fmt], infer_schema=False, quote_char='"')
    else:
        raise ValueError(f"path {path}: format {fmt!r} is not supported here (use CSV, TSV, .inter or parquet)")
    names = [normalise_name(c) for c in frame.columns]
    picked = []
    for role in ("user", "item"):
        match = next((frame.columns[names.index(a)] for a in ALIASES[role] if a in names), None)
        if match is None:
            raise ValueError(f"path {path}: no {role} column; header has {', '.join(frame.columns)}")
        picked.append(frame[match].cast(pl.Utf8).to_numpy())
    return picked[0], picked[1]


def split_per_user(user_ids: np.ndarray, item_ids: np.ndarray, *, seed: int) -> PaperSplit:
    """The seeded per-user 80/10/10 split of (user, item) pairs (see the module docstring).

    Args:
        user_ids, item_ids: (N,) the pairs, any hashable dtype.
        seed: seeds each user's shuffle.

    Returns:
        The split over the kept users and the items they hold, densely re-indexed in id order.
    """
    users, user = np.unique(np.asarray(user_ids), return_inverse=True)
    items, item = np.unique(np.asarray(item_ids), return_inverse=True)
    pairs = sp.csr_matrix((np.ones(len(user), np.float32), (user, item)), shape=(len(users), len(items)))
    pairs.sum_duplicates()
    kept_users = np.flatnonzero(np.diff(pairs.indptr) >= MIN_INTERACTIONS)
    pairs = pairs[kept_users]
    kept_items = np.flatnonzero(np.diff(pairs.tocsc().indptr) > 0)
    pairs = sp.csr_matrix(pairs[:, kept_items])
    pairs.data[:] = 1.0
    sizes = np.diff(pairs.indptr)
    owner = np.repeat(np.arange(pairs.shape[0]), sizes)
    shuffled = np.lexsort((np.random.default_rng(seed).random(pairs.nnz), owner))
    rank = np.empty(pairs.nnz, dtype=np.int64)
    rank[shuffled] = np.arange(pairs.nnz) - pairs.indptr[owner[shuffled]]
    n_val = np.floor(0.1 * sizes + 0.5).astype(np.int64)[owner]
    n_test = np.maximum(n_val, 1)
    part = np.where(rank < n_test, 2, np.where(rank < n_test + n_val, 1, 0))

    def keep(which: int) -> sp.csr_matrix:
        out = pairs.copy()
        out.data = np.where(part == which, 1.0, 0.0).astype(np.float32)
        out.eliminate_zeros()
        return out

    train, val, test = keep(0), keep(1), keep(2)
    return PaperSplit(train=train, val=val, test=test, val_context=train, test_context=sp.csr_matrix(train + val),
                      user_ids=users[kept_users], item_ids=items[kept_items])


def dataset_label(path: str | Path) -> str:
    """A short name for a data file: its stem, prefixed by its folder's name unless the stem
    already contains it (``ml-100k/ml-100k.inter`` → ``ml-100k``, ``ml-latest-small/ratings.csv``
    → ``ml-latest-small-ratings``)."""
    path = Path(path)
    folder = path.parent.name
    return path.stem if not folder or folder in path.stem else f"{folder}-{path.stem}"


def read_static_split(path: str | Path, *, seed: int = 0) -> PaperSplit:
    """The authors' split of a paper-split parquet file, else :func:`split_per_user` of the log."""
    path = Path(path)
    if detect_format(path) == "parquet" and path.is_file() and "split" in pl.read_parquet_schema(path):
        return read_paper_split(path)
    return split_per_user(*read_interactions(path), seed=seed)
