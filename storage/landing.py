"""Land validated rows in ``interactions`` and give new users and items stable dense indices.

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


def land_rows(con: duckdb.DuckDBPyConnection, *, dataset: str, source: str) -> int:
    """Insert the rows of ``source`` into ``interactions`` (their period is assigned later).

    ``source`` must hold user_id, item_id, rating, ts, source_file, row_no, with no key already in
    ``interactions`` (the caller anti-joins first).

    Returns:
        Number of rows inserted.
    """
    assign_indices(con, dataset=dataset, source=source)
    con.execute(
        "INSERT INTO interactions (dataset, user_id, item_id, rating, ts, source_file, row_no, "
        "user_idx, item_idx, period) "
        "SELECT ?, s.user_id, s.item_id, s.rating, s.ts, s.source_file, s.row_no, u.idx, i.idx, NULL "
        f"FROM {source} s "
        "JOIN users u ON u.dataset = ? AND u.external_id = s.user_id "
        "JOIN items i ON i.dataset = ? AND i.external_id = s.item_id",
        [dataset, dataset, dataset],
    )
    return int(con.execute(f"SELECT count(*) FROM {source}").fetchall()[0][0])
