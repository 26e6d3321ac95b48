"""Metrics, model registry and ADER exemplars (DESIGN.md §2); every write replaces by key."""

from __future__ import annotations

import re

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa

from storage.catalog import registered, transaction

_METRIC_KEY = re.compile(r"([A-Za-z_][\w]*)@(\d+)")


def split_metric_key(key: str) -> tuple[str, int]:
    """``"ndcg@10"`` -> ``("ndcg", 10)``; a key without ``@k`` gets ``k = 0`` (``"auc"``)."""
    if m := _METRIC_KEY.fullmatch(key):
        return m.group(1), int(m.group(2))
    if not key or "@" in key:
        raise ValueError(f"metric key {key!r} must look like 'name' or 'name@k'")
    return key, 0


def write_metrics(
    con: duckdb.DuckDBPyConnection, *, dataset: str, strategy: str, trained_through: int,
    evaluated_on: int, values: dict[str, float], run_id: str,
) -> None:
    """Replace the metrics of (dataset, strategy, trained_through, evaluated_on) with ``values``.

    Args:
        values: keys like ``"ndcg@10"``, ``"hr@100"``, ``"auc"``; stored as (metric, k).
    """
    rows = [(*split_metric_key(key), float(value)) for key, value in values.items()]
    with transaction(con):
        con.execute(
            "DELETE FROM metrics WHERE dataset = ? AND strategy = ? AND trained_through = ? "
            "AND evaluated_on = ?",
            [dataset, strategy, trained_through, evaluated_on],
        )
        con.executemany(
            "INSERT INTO metrics (dataset, strategy, trained_through, evaluated_on, metric, k, value, "
            "run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [[dataset, strategy, trained_through, evaluated_on, metric, k, value, run_id]
             for metric, k, value in rows],
        )


def read_metrics(con: duckdb.DuckDBPyConnection, *, dataset: str) -> pl.DataFrame:
    """All metric rows of ``dataset``: dataset, strategy, trained_through, evaluated_on, metric, k,
    value, run_id (ordered by strategy, evaluated_on, metric, k)."""
    return con.sql(
        "SELECT dataset, strategy, trained_through::BIGINT AS trained_through, "
        "evaluated_on::BIGINT AS evaluated_on, metric, k::BIGINT AS k, value, run_id FROM metrics "
        "WHERE dataset = ? ORDER BY strategy, evaluated_on, trained_through, metric, k",
        params=[dataset],
    ).pl()


def register_model(
    con: duckdb.DuckDBPyConnection, *, dataset: str, strategy: str, period: int, path: str
) -> None:
    """Record (replace) where the state of model M_period^strategy is stored."""
    con.execute(
        "INSERT OR REPLACE INTO models (dataset, strategy, period, path) VALUES (?, ?, ?, ?)",
        [dataset, strategy, period, str(path)],
    )


def model_path(
    con: duckdb.DuckDBPyConnection, *, dataset: str, strategy: str, period: int
) -> str | None:
    """Registered path of M_period^strategy, or None."""
    row = con.execute(
        "SELECT path FROM models WHERE dataset = ? AND strategy = ? AND period = ?",
        [dataset, strategy, period],
    ).fetchall()
    return row[0][0] if row else None


def write_exemplars(
    con: duckdb.DuckDBPyConnection, *, dataset: str, strategy: str, period: int,
    user_idx: np.ndarray, source_period: np.ndarray,
) -> None:
    """Replace the exemplar set kept after ``period``: rows (user_idx[j], source_period[j]).

    Raises:
        ValueError: the two arrays differ in length.
    """
    users = np.asarray(user_idx, dtype=np.int32).reshape(-1)
    sources = np.asarray(source_period, dtype=np.int32).reshape(-1)
    if users.shape != sources.shape:
        raise ValueError(f"user_idx ({users.size}) and source_period ({sources.size}) differ in length")
    table = pa.table({"user_idx": users, "source_period": sources})
    with transaction(con):
        con.execute(
            "DELETE FROM exemplars WHERE dataset = ? AND strategy = ? AND period = ?",
            [dataset, strategy, period],
        )
        with registered(con, "_relay_exemplars", table):
            con.execute(
                "INSERT INTO exemplars SELECT DISTINCT ?, ?, ?, user_idx, source_period "
                "FROM _relay_exemplars",
                [dataset, strategy, period],
            )


def read_exemplars(
    con: duckdb.DuckDBPyConnection, *, dataset: str, strategy: str, period: int
) -> tuple[np.ndarray, np.ndarray]:
    """(user_idx, source_period) int64 arrays of the exemplars kept after ``period``."""
    rows = con.execute(
        "SELECT user_idx::BIGINT AS u, source_period::BIGINT AS p FROM exemplars WHERE dataset = ? "
        "AND strategy = ? AND period = ? ORDER BY source_period, user_idx",
        [dataset, strategy, period],
    ).fetchnumpy()
    return np.asarray(rows["u"], dtype=np.int64), np.asarray(rows["p"], dtype=np.int64)
