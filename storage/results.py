"""Metrics and the model registry (docs/architecture.md §2); every write replaces by key."""

from __future__ import annotations

from collections.abc import Iterable

import duckdb
import polars as pl

from storage.catalog import transaction


def write_metrics(
    con: duckdb.DuckDBPyConnection, *, dataset: str, strategy: str, trained_through: int,
    evaluated_on: int, values: Iterable[tuple[str, int, float]], run_id: str,
) -> None:
    """Replace the metrics of (dataset, strategy, trained_through, evaluated_on) with ``values``.

    Args:
        values: (metric, k, value) triples, k = 0 for metrics without a cut-off (``auc``).
    """
    rows = [(str(metric), int(k), float(value)) for metric, k, value in values]
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
    con: duckdb.DuckDBPyConnection, *, dataset: str, strategy: str, period: int, path: str,
    rows_replayed: int | None = None, interactions_replayed: int | None = None, mass_replayed: float | None = None,
) -> None:
    """Record (replace) where the state of model M_period^strategy is stored and what its training
    replayed besides period ``period``'s rows (rows, interactions, mass; None: unknown)."""
    con.execute(
        "INSERT OR REPLACE INTO models (dataset, strategy, period, path, rows_replayed, interactions_replayed, "
        "mass_replayed) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [dataset, strategy, period, str(path), rows_replayed, interactions_replayed, mass_replayed],
    )


def read_models(con: duckdb.DuckDBPyConnection, *, dataset: str) -> pl.DataFrame:
    """Every registered model of ``dataset``: strategy, period, path, rows_replayed,
    interactions_replayed, mass_replayed (ordered by strategy, period)."""
    return con.sql(
        "SELECT strategy, period::BIGINT AS period, path, rows_replayed::BIGINT AS rows_replayed, "
        "interactions_replayed::BIGINT AS interactions_replayed, mass_replayed FROM models WHERE dataset = ? "
        "ORDER BY strategy, period",
        params=[dataset],
    ).pl()


def model_path(
    con: duckdb.DuckDBPyConnection, *, dataset: str, strategy: str, period: int
) -> str | None:
    """Registered path of M_period^strategy, or None."""
    row = con.execute(
        "SELECT path FROM models WHERE dataset = ? AND strategy = ? AND period = ?",
        [dataset, strategy, period],
    ).fetchall()
    return row[0][0] if row else None
