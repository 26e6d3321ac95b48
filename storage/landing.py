"""Land validated rows in ``interactions`` (or ``late_rows``) and give new users and items
stable dense indices.

Indices (docs/architecture.md §2): a new external id gets the next free index of its dataset, in order of
its first appearance by timestamp within the batch (ties by row number); existing indices never
change.
"""

from __future__ import annotations

import duckdb

_ENTITIES = (("users", "user_id"), ("items", "item_id"))


def assign_indices(con: duckdb.DuckDBPyConnection, *, dataset: str, source: str) -> None:
    """Add the users and items of table ``source`` (user_id, item_id, ts, row_no) not yet known.

    Args:
        con: open catalog connection (call inside the caller's transaction).
        dataset: dataset name.
        source: name of a (temporary) table with at least user_id, item_id, ts, row_no.
    """
    for table, column in _ENTITIES:
        con.execute(
            f"INSERT INTO {table} (dataset, external_id, idx) "
            f"SELECT ?, n.{column}, (SELECT coalesce(max(idx) + 1, 0) FROM {table} WHERE dataset = ?) "
            "+ row_number() OVER (ORDER BY n.first_ts, n.first_row) - 1 "
            f"FROM (SELECT {column}, min(ts) AS first_ts, min(row_no) AS first_row FROM {source} "
            f"GROUP BY {column}) n "
            f"ANTI JOIN (SELECT external_id FROM {table} WHERE dataset = ?) k "
            f"ON k.external_id = n.{column}",
            [dataset, dataset, dataset],
        )


def admit_rows(
    con: duckdb.DuckDBPyConnection, *, dataset: str, source: str, frontier: int | None,
    origin: tuple[str, str] | None = None,
) -> tuple[int, int]:
    """Land the rows of ``source``: rows at or before ``frontier`` (the last second of a finished
    period, :func:`storage.periods.finished_frontier`) go to ``late_rows`` with the period they
    fall in and are deleted from ``source``; the others go to ``interactions`` (:func:`land_rows`).

    Returns:
        (rows landed in ``interactions``, rows sent to ``late_rows``).
    """
    late = 0
    if frontier is not None:
        columns, params = _origin(origin)
        con.execute(
            "INSERT INTO late_rows (dataset, user_id, item_id, rating, ts, source_file, source_sha, row_no, "
            f"period) SELECT ?, s.user_id, s.item_id, s.rating, s.ts, {columns}, s.row_no, "
            "(SELECT max(p.period) FROM periods p WHERE p.dataset = ? AND p.start_ts <= s.ts) "
            f"FROM {source} s WHERE s.ts <= ?",
            [dataset, *params, dataset, frontier],
        )
        late = int(con.execute(f"SELECT count(*) FROM {source} WHERE ts <= ?", [frontier]).fetchall()[0][0])
        con.execute(f"DELETE FROM {source} WHERE ts <= ?", [frontier])
    return land_rows(con, dataset=dataset, source=source, origin=origin), late


def land_rows(
    con: duckdb.DuckDBPyConnection, *, dataset: str, source: str, origin: tuple[str, str] | None = None
) -> int:
    """Insert the rows of ``source`` into ``interactions`` (their period is assigned later).

    ``source`` must hold user_id, item_id, rating, ts, row_no, with no key already in
    ``interactions`` (the caller anti-joins first), and the columns source_file and source_sha
    unless every row comes from one file: ``origin`` = (its path, its SHA-256).

    Returns:
        Number of rows inserted.
    """
    assign_indices(con, dataset=dataset, source=source)
    columns, params = _origin(origin)
    con.execute(
        "INSERT INTO interactions (dataset, user_id, item_id, rating, ts, source_file, source_sha, row_no, "
        "user_idx, item_idx, period) "
        f"SELECT ?, s.user_id, s.item_id, s.rating, s.ts, {columns}, s.row_no, u.idx, i.idx, NULL "
        f"FROM {source} s "
        "JOIN users u ON u.dataset = ? AND u.external_id = s.user_id "
        "JOIN items i ON i.dataset = ? AND i.external_id = s.item_id",
        [dataset, *params, dataset, dataset],
    )
    return int(con.execute(f"SELECT count(*) FROM {source}").fetchall()[0][0])


def _origin(origin: tuple[str, str] | None) -> tuple[str, list[str]]:
    """SQL of the (source_file, source_sha) columns and their parameters."""
    return ("?, ?", list(origin)) if origin else ("s.source_file, s.source_sha", [])
