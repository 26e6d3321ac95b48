"""Catalog schema: creation, versioning, migration of an older file, refusal of a newer one."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from storage import catalog
from storage.errors import SchemaVersionError

DESIGN_TABLES = {
    "interactions", "rejected_rows", "ingested_files", "users", "items", "periods", "late_rows",
    "summaries", "summary_runs", "exemplars", "models", "metrics", "period_policy", "schema_version",
}


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {row[0] for row in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE NOT temporary").fetchall()}


def test_new_file_gets_every_table_and_latest_version(tmp_path: Path) -> None:
    con = catalog.connect(tmp_path / "sub" / "c.duckdb")
    assert _tables(con) == DESIGN_TABLES
    assert catalog.schema_version(con) == catalog.SCHEMA_VERSION == len(catalog.MIGRATIONS)
    con.close()
    con = catalog.connect(tmp_path / "sub" / "c.duckdb")   # reopening changes nothing
    versions = con.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
    assert [v for (v,) in versions] == list(range(1, catalog.SCHEMA_VERSION + 1))
    con.close()


def test_memory_catalog() -> None:
    con = catalog.connect(":memory:")
    assert catalog.schema_version(con) == catalog.SCHEMA_VERSION


def test_older_file_is_migrated_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    raw = duckdb.connect(str(path))
    assert catalog.migrate(raw, upto=1) == 1
    raw.execute("INSERT INTO users VALUES ('d', 'u1', 0, NULL)")
    assert "periods" not in _tables(raw)
    raw.close()
    con = catalog.connect(path)
    assert catalog.schema_version(con) == catalog.SCHEMA_VERSION
    assert _tables(con) == DESIGN_TABLES
    assert con.execute("SELECT external_id FROM users").fetchall() == [("u1",)]
    con.close()


def test_older_file_opened_read_only_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    raw = duckdb.connect(str(path))
    catalog.migrate(raw, upto=2)
    raw.close()
    with pytest.raises(SchemaVersionError, match="needs migrating"):
        catalog.connect(path, read_only=True)


def test_newer_file_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "new.duckdb"
    con = catalog.connect(path)
    con.execute("INSERT INTO schema_version (version, description) VALUES (99, 'from the future')")
    con.close()
    with pytest.raises(SchemaVersionError, match=r"schema version 99 is newer than this Relay supports"):
        catalog.connect(path)


def test_transaction_rolls_back_everything_and_nests(tmp_path: Path) -> None:
    con = catalog.connect(tmp_path / "t.duckdb")
    with pytest.raises(RuntimeError):
        with catalog.transaction(con):
            con.execute("INSERT INTO users VALUES ('d', 'u1', 0, NULL)")
            with catalog.transaction(con):      # joins the outer transaction
                con.execute("INSERT INTO items VALUES ('d', 'i1', 0, NULL)")
            raise RuntimeError("crash")
    assert con.execute("SELECT count(*) FROM users").fetchall() == [(0,)]
    assert con.execute("SELECT count(*) FROM items").fetchall() == [(0,)]
    with catalog.transaction(con):
        con.execute("INSERT INTO users VALUES ('d', 'u1', 0, NULL)")
    assert con.execute("SELECT count(*) FROM users").fetchall() == [(1,)]
