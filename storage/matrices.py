"""Sparse training matrices read from the catalog (docs/architecture.md §3: a row is a (user, period) bag).

Rows are ordered by (period, user index); columns are the dataset's global item indices, so
matrices of different periods line up. Values are binary: an item the user touched in that
period (any number of times) is 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class PeriodMatrix:
    """Bags of one or more periods.

    Attributes:
        matrix: (n_rows, n_items) binary float32 CSR, one row per (user, period) bag.
        user_idx: (n_rows,) int64 dense user index of each row.
        period: (n_rows,) int64 period of each row.
        n_items: global item count of the dataset (all items ever ingested).
    """

    matrix: sp.csr_matrix
    user_idx: np.ndarray
    period: np.ndarray
    n_items: int


def n_items(con: duckdb.DuckDBPyConnection, *, dataset: str) -> int:
    """Number of items ever ingested for ``dataset`` (indices are 0..n_items-1)."""
    return int(con.execute("SELECT count(*) FROM items WHERE dataset = ?", [dataset]).fetchall()[0][0])


def n_users(con: duckdb.DuckDBPyConnection, *, dataset: str) -> int:
    """Number of users ever ingested for ``dataset``."""
    return int(con.execute("SELECT count(*) FROM users WHERE dataset = ?", [dataset]).fetchall()[0][0])


def period_matrix(con: duckdb.DuckDBPyConnection, *, dataset: str, period: int) -> PeriodMatrix:
    """Bags of one period; see :func:`periods_matrix`."""
    return periods_matrix(con, dataset=dataset, first=period, last=period)


def periods_matrix(
    con: duckdb.DuckDBPyConnection, *, dataset: str, first: int, last: int
) -> PeriodMatrix:
    """Bags of every period in ``first..last`` (inclusive), stacked in period order.

    Raises:
        ValueError: ``first > last`` or a period in the range does not exist.
    """
    if first > last:
        raise ValueError(f"first ({first}) must be <= last ({last})")
    _check_periods(con, dataset=dataset, first=first, last=last)
    cells = con.execute(
        "SELECT period::BIGINT AS period, user_idx::BIGINT AS user_idx, item_idx::INTEGER AS item_idx "
        "FROM interactions WHERE dataset = ? AND period BETWEEN ? AND ? "
        "GROUP BY ALL ORDER BY period, user_idx, item_idx",
        [dataset, first, last],
    ).fetchnumpy()
    width = n_items(con, dataset=dataset)
    keys = np.stack([cells["period"], cells["user_idx"]], axis=1) if len(cells["period"]) else (
        np.empty((0, 2), dtype=np.int64))
    bags, row_of_cell = np.unique(keys, axis=0, return_inverse=True)
    row_of_cell = np.asarray(row_of_cell).reshape(-1)
    matrix = sp.csr_matrix(
        (np.ones(len(row_of_cell), dtype=np.float32), (row_of_cell, np.asarray(cells["item_idx"]))),
        shape=(len(bags), width),
    )
    return PeriodMatrix(
        matrix=matrix, user_idx=bags[:, 1].astype(np.int64), period=bags[:, 0].astype(np.int64),
        n_items=width,
    )


def items_seen_through(con: duckdb.DuckDBPyConnection, *, dataset: str, period: int) -> np.ndarray:
    """(n_items,) bool: the item occurs in some period ``<= period``."""
    return item_counts_through(con, dataset=dataset, period=period) > 0


def item_counts_through(con: duckdb.DuckDBPyConnection, *, dataset: str, period: int) -> np.ndarray:
    """(n_items,) int64: number of interactions with each item in periods ``<= period``."""
    counts = np.zeros(n_items(con, dataset=dataset), dtype=np.int64)
    rows = con.execute(
        "SELECT item_idx, count(*) AS n FROM interactions WHERE dataset = ? AND period <= ? "
        "GROUP BY item_idx",
        [dataset, period],
    ).fetchnumpy()
    counts[np.asarray(rows["item_idx"], dtype=np.int64)] = np.asarray(rows["n"], dtype=np.int64)
    return counts


def _check_periods(con: duckdb.DuckDBPyConnection, *, dataset: str, first: int, last: int) -> None:
    known = {
        row[0] for row in con.execute(
            "SELECT period FROM periods WHERE dataset = ? AND period BETWEEN ? AND ?",
            [dataset, first, last],
        ).fetchall()
    }
    missing = sorted(set(range(first, last + 1)) - known)
    if missing:
        raise ValueError(f"dataset {dataset!r} has no period(s) {missing[:5]}; cut periods first")
