"""Distill-CF summaries in the catalog (docs/architecture.md §2): fake user rows per period.

A summary of period t is a (μ, n_items) sparse matrix with values in [0, 1]; only its non-zero
entries are stored. Writing a period's summary replaces the period's previous one (any run id)
in one transaction, so a re-run never duplicates rows.
"""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from storage.catalog import registered, transaction


def write_summary(
    con: duckdb.DuckDBPyConnection, *, dataset: str, period: int, run_id: str,
    summary: sp.csr_matrix, params: dict, seed: int, loss: float, density: float, seconds: float,
) -> None:
    """Store (replace) the summary of ``period`` and its run record.

    Args:
        summary: (μ, n_items) sparse matrix, values in [0, 1]; explicit zeros are dropped.
        params: JSON-serialisable distillation settings (stored as JSON text).
        seed, loss, density, seconds: run facts recorded in ``summary_runs``.

    Raises:
        ValueError: a value outside [0, 1] or not finite, or ``params`` not JSON-serialisable.
    """
    coo = sp.coo_matrix(summary)
    coo.eliminate_zeros()
    values = np.asarray(coo.data, dtype=np.float32)
    if values.size and not (np.isfinite(values).all() and values.min() >= 0 and values.max() <= 1):
        raise ValueError(f"summary of period {period}: values must lie in [0, 1]")
    try:
        params_json = json.dumps(params, sort_keys=True)
    except TypeError as error:
        raise ValueError(f"params of period {period} are not JSON-serialisable: {error}") from error
    cells = pa.table({
        "fake_user": pa.array(coo.row, pa.int32()), "item_idx": pa.array(coo.col, pa.int32()),
        "value": pa.array(values, pa.float32()),
    })
    with transaction(con):
        con.execute("DELETE FROM summaries WHERE dataset = ? AND period = ?", [dataset, period])
        con.execute("DELETE FROM summary_runs WHERE dataset = ? AND period = ?", [dataset, period])
        with registered(con, "_relay_summary_cells", cells):
            con.execute(
                "INSERT INTO summaries SELECT ?, ?, ?, fake_user, item_idx, value "
                "FROM _relay_summary_cells",
                [dataset, period, run_id],
            )
        con.execute(
            "INSERT INTO summary_runs (dataset, period, run_id, params, seed, loss, density, seconds, "
            "n_rows) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [dataset, period, run_id, params_json, seed, loss, density, seconds, summary.shape[0]],
        )


def read_summaries(
    con: duckdb.DuckDBPyConnection, *, dataset: str, through_period: int, n_items: int
) -> sp.csr_matrix:
    """Fake rows of every summarised period ``<= through_period``, stacked in period order.

    Returns:
        (Σ μ_t, n_items) float32 CSR with values in [0, 1] (0 rows if nothing is summarised).

    Raises:
        ValueError: a stored item index is ``>= n_items``.
    """
    runs = con.execute(
        "SELECT period, n_rows FROM summary_runs WHERE dataset = ? AND period <= ? ORDER BY period",
        [dataset, through_period],
    ).fetchall()
    offsets = {period: offset for (period, _), offset in
               zip(runs, np.cumsum([0] + [n for _, n in runs])[:-1])}
    cells = con.execute(
        "SELECT period, fake_user, item_idx, value FROM summaries WHERE dataset = ? AND period <= ?",
        [dataset, through_period],
    ).fetchnumpy()
    items = np.asarray(cells["item_idx"], dtype=np.int64)
    if items.size and items.max() >= n_items:
        raise ValueError(f"summaries of {dataset!r} use item {items.max()} but n_items={n_items}")
    base = np.array([offsets[p] for p in np.asarray(cells["period"]).tolist()], dtype=np.int64)
    rows = base + np.asarray(cells["fake_user"], dtype=np.int64)
    n_rows = int(sum(n for _, n in runs))
    return sp.csr_matrix(
        (np.asarray(cells["value"], dtype=np.float32), (rows, items)), shape=(n_rows, n_items)
    )


def summarised_periods(con: duckdb.DuckDBPyConnection, *, dataset: str) -> list[int]:
    """Periods of ``dataset`` that have a stored summary, ascending."""
    return [row[0] for row in con.execute(
        "SELECT period FROM summary_runs WHERE dataset = ? ORDER BY period", [dataset]
    ).fetchall()]


def summary_sizes(con: duckdb.DuckDBPyConnection, *, dataset: str, through_period: int) -> np.ndarray:
    """(k, 2) rows (fake users) and interactions (stored cells) of each summarised period
    ``<= through_period``, in period order."""
    rows = con.execute(
        "SELECT r.period, any_value(r.n_rows), count(s.value) FROM summary_runs r LEFT JOIN summaries s "
        "ON s.dataset = r.dataset AND s.period = r.period WHERE r.dataset = ? AND r.period <= ? "
        "GROUP BY r.period ORDER BY r.period",
        [dataset, through_period],
    ).fetchall()
    return np.asarray([(n_rows, nnz) for _, n_rows, nnz in rows], dtype=np.int64).reshape(-1, 2)
