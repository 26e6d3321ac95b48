"""Period matrices on a tiny hand-made dataset: shapes, rows, binary content, item statistics."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pytest

from storage import catalog, ingest, matrices, periods

# user, item, ts. Items get indices x=0, y=1, z=2, w=3 (first appearance); users a=0, b=1, c=2.
ROWS = [
    ("a", "x", 100), ("b", "y", 110), ("a", "y", 120),      # period 0
    ("a", "x", 200), ("c", "z", 210), ("a", "z", 220),      # period 1 (a-x again, new ts)
    ("b", "w", 300), ("b", "x", 310), ("c", "x", 320),      # period 2
]


@pytest.fixture
def con(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    connection = catalog.connect(tmp_path / "c.duckdb")
    path = tmp_path / "a.csv"
    path.write_text("user,item,ts\n" + "".join(f"{u},{i},{t}\n" for u, i, t in ROWS))
    ingest.ingest_file(connection, path, dataset="d", ts_floor=0)
    periods.cut_periods(connection, dataset="d", policy="equal-count:3")
    yield connection
    connection.close()


def test_period_matrix_rows_are_user_bags(con: duckdb.DuckDBPyConnection) -> None:
    pm = matrices.period_matrix(con, dataset="d", period=1)
    assert pm.n_items == 4 and pm.matrix.shape == (2, 4) and pm.matrix.dtype == np.float32
    assert pm.user_idx.tolist() == [0, 2] and pm.period.tolist() == [1, 1]
    np.testing.assert_array_equal(pm.matrix.toarray(), [[1, 0, 1, 0], [0, 0, 1, 0]])


def test_periods_matrix_stacks_in_period_order(con: duckdb.DuckDBPyConnection) -> None:
    pm = matrices.periods_matrix(con, dataset="d", first=0, last=2)
    assert pm.period.tolist() == [0, 0, 1, 1, 2, 2]
    assert pm.user_idx.tolist() == [0, 1, 0, 2, 1, 2]
    np.testing.assert_array_equal(pm.matrix.toarray(), [
        [1, 1, 0, 0], [0, 1, 0, 0], [1, 0, 1, 0], [0, 0, 1, 0], [1, 0, 0, 1], [1, 0, 0, 0]])
    assert set(pm.matrix.data.tolist()) == {1.0}


def test_items_seen_and_counts_through(con: duckdb.DuckDBPyConnection) -> None:
    assert matrices.items_seen_through(con, dataset="d", period=0).tolist() == [True, True, False, False]
    assert matrices.item_counts_through(con, dataset="d", period=1).tolist() == [2, 2, 2, 0]
    assert matrices.item_counts_through(con, dataset="d", period=2).tolist() == [4, 2, 2, 1]


def test_missing_period_or_bad_range_names_it(con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(ValueError, match=r"no period\(s\) \[3\]"):
        matrices.period_matrix(con, dataset="d", period=3)
    with pytest.raises(ValueError, match="first"):
        matrices.periods_matrix(con, dataset="d", first=2, last=1)
