"""Catalog schema: creation, versioning, migration of an older file, refusal of a newer one."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from storage import catalog
from storage.errors import SchemaVersionError

CATALOG_TABLES = {
    "interactions", "rejected_rows", "duplicate_rows", "ingested_files", "users", "items", "periods", "late_rows",
    "summaries", "summary_runs", "models", "metrics", "period_policy", "schema_version",
}


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {row[0] for row in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE NOT temporary").fetchall()}


def test_new_file_gets_every_table_and_latest_version(tmp_path: Path) -> None:
    con = catalog.connect(tmp_path / "sub" / "c.duckdb")
    assert _tables(con) == CATALOG_TABLES
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
    assert _tables(con) == CATALOG_TABLES
    assert con.execute("SELECT external_id FROM users").fetchall() == [("u1",)]
    con.close()


def test_version_3_file_loses_only_the_unused_exemplars_table(tmp_path: Path) -> None:
    path = tmp_path / "v3.duckdb"
    raw = duckdb.connect(str(path))
    catalog.migrate(raw, upto=3)
    assert "exemplars" in _tables(raw)
    raw.execute("INSERT INTO models (dataset, strategy, period, path) VALUES ('d', 'ader', 0, '/m')")
    raw.close()
    con = catalog.connect(path)
    assert _tables(con) == CATALOG_TABLES
    assert con.execute("SELECT path FROM models").fetchall() == [("/m",)]
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


def test_catalog_locked_by_another_process_is_a_transient_busy_error(tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    from storage.errors import CatalogBusyError
    from tasks.policy import is_transient

    path = tmp_path / "locked.duckdb"
    catalog.connect(path).close()
    holder = subprocess.Popen([sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(path)!r}); "
                               "print('held', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(CatalogBusyError, match="lock") as caught:
            catalog.connect(path)
        assert is_transient(caught.value)
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    catalog.connect(path).close()  # free again once the holder is gone
