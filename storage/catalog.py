"""The DuckDB catalog: schema (docs/architecture.md §2), versioned migrations and connections.

The schema is built by an ordered list of migrations. ``schema_version`` records every applied
version; :func:`connect` applies the missing ones in one transaction and refuses a file whose
version is newer than this code knows.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from weakref import WeakSet

import duckdb

from storage.errors import CatalogBusyError, SchemaVersionError
from storage.readers import is_data_file

_INGESTION = (
    """CREATE TABLE interactions (
        dataset VARCHAR NOT NULL, user_id VARCHAR NOT NULL, item_id VARCHAR NOT NULL,
        rating DOUBLE, ts BIGINT NOT NULL, source_file VARCHAR NOT NULL, row_no BIGINT NOT NULL,
        user_idx INTEGER NOT NULL, item_idx INTEGER NOT NULL, period INTEGER,
        PRIMARY KEY (dataset, user_idx, item_idx, ts))""",
    """CREATE TABLE rejected_rows (
        dataset VARCHAR NOT NULL, source_file VARCHAR NOT NULL, row_no BIGINT NOT NULL,
        raw VARCHAR, reason VARCHAR NOT NULL,
        PRIMARY KEY (dataset, source_file, row_no))""",
    """CREATE TABLE ingested_files (
        dataset VARCHAR NOT NULL, path VARCHAR NOT NULL, sha256 VARCHAR NOT NULL,
        rows_ok BIGINT NOT NULL, rows_rejected BIGINT NOT NULL, rows_duplicate BIGINT NOT NULL,
        rows_late BIGINT NOT NULL, ingested_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
        PRIMARY KEY (dataset, sha256))""",
    """CREATE TABLE users (
        dataset VARCHAR NOT NULL, external_id VARCHAR NOT NULL, idx INTEGER NOT NULL,
        first_seen_period INTEGER, PRIMARY KEY (dataset, external_id), UNIQUE (dataset, idx))""",
    """CREATE TABLE items (
        dataset VARCHAR NOT NULL, external_id VARCHAR NOT NULL, idx INTEGER NOT NULL,
        first_seen_period INTEGER, PRIMARY KEY (dataset, external_id), UNIQUE (dataset, idx))""",
)

_PERIODS = (
    """CREATE TABLE period_policy (
        dataset VARCHAR PRIMARY KEY, policy VARCHAR NOT NULL,
        set_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp)""",
    """CREATE TABLE periods (
        dataset VARCHAR NOT NULL, period INTEGER NOT NULL, start_ts BIGINT NOT NULL,
        end_ts BIGINT NOT NULL, n_interactions BIGINT NOT NULL,
        status VARCHAR NOT NULL CHECK (status IN ('open', 'finished')),
        PRIMARY KEY (dataset, period))""",
    """CREATE TABLE late_rows (
        dataset VARCHAR NOT NULL, user_id VARCHAR NOT NULL, item_id VARCHAR NOT NULL,
        rating DOUBLE, ts BIGINT NOT NULL, source_file VARCHAR NOT NULL, row_no BIGINT NOT NULL,
        period INTEGER, ingested_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
        PRIMARY KEY (dataset, user_id, item_id, ts))""",
)

_RESULTS = (
    """CREATE TABLE summary_runs (
        dataset VARCHAR NOT NULL, period INTEGER NOT NULL, run_id VARCHAR NOT NULL,
        params VARCHAR NOT NULL, seed BIGINT NOT NULL, loss DOUBLE, density DOUBLE,
        seconds DOUBLE, n_rows INTEGER NOT NULL,
        created_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
        PRIMARY KEY (dataset, period))""",
    """CREATE TABLE summaries (
        dataset VARCHAR NOT NULL, period INTEGER NOT NULL, run_id VARCHAR NOT NULL,
        fake_user INTEGER NOT NULL, item_idx INTEGER NOT NULL, value REAL NOT NULL,
        PRIMARY KEY (dataset, period, fake_user, item_idx))""",
    """CREATE TABLE exemplars (
        dataset VARCHAR NOT NULL, strategy VARCHAR NOT NULL, period INTEGER NOT NULL,
        user_idx INTEGER NOT NULL, source_period INTEGER NOT NULL,
        PRIMARY KEY (dataset, strategy, period, user_idx, source_period))""",
    """CREATE TABLE models (
        dataset VARCHAR NOT NULL, strategy VARCHAR NOT NULL, period INTEGER NOT NULL,
        path VARCHAR NOT NULL, created_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
        PRIMARY KEY (dataset, strategy, period))""",
    """CREATE TABLE metrics (
        dataset VARCHAR NOT NULL, strategy VARCHAR NOT NULL, trained_through INTEGER NOT NULL,
        evaluated_on INTEGER NOT NULL, metric VARCHAR NOT NULL, k INTEGER NOT NULL,
        value DOUBLE, run_id VARCHAR NOT NULL,
        created_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
        PRIMARY KEY (dataset, strategy, trained_through, evaluated_on, metric, k))""",
)

_FIRST_SHA_OF_PATH = (
    "(SELECT dataset, path, arg_min(sha256, ingested_at) AS sha256 FROM ingested_files GROUP BY ALL)"
)
_HARDENING = (
    "ALTER TABLE interactions ADD COLUMN source_sha VARCHAR",
    "ALTER TABLE late_rows ADD COLUMN source_sha VARCHAR",
    f"UPDATE interactions SET source_sha = f.sha256 FROM {_FIRST_SHA_OF_PATH} f "
    "WHERE interactions.dataset = f.dataset AND interactions.source_file = f.path",
    f"UPDATE late_rows SET source_sha = f.sha256 FROM {_FIRST_SHA_OF_PATH} f "
    "WHERE late_rows.dataset = f.dataset AND late_rows.source_file = f.path",
    """CREATE TABLE rejected_rows_v5 (
        dataset VARCHAR NOT NULL, sha256 VARCHAR NOT NULL, source_file VARCHAR NOT NULL,
        row_no BIGINT NOT NULL, raw VARCHAR, reason VARCHAR NOT NULL,
        PRIMARY KEY (dataset, sha256, row_no))""",
    "INSERT INTO rejected_rows_v5 SELECT r.dataset, coalesce(f.sha256, 'unknown'), r.source_file, r.row_no, "
    f"r.raw, r.reason FROM rejected_rows r LEFT JOIN {_FIRST_SHA_OF_PATH} f "
    "ON f.dataset = r.dataset AND f.path = r.source_file",
    "DROP TABLE rejected_rows",
    "ALTER TABLE rejected_rows_v5 RENAME TO rejected_rows",
    """CREATE TABLE duplicate_rows (
        dataset VARCHAR NOT NULL, sha256 VARCHAR NOT NULL, row_no BIGINT NOT NULL,
        user_id VARCHAR NOT NULL, item_id VARCHAR NOT NULL, ts BIGINT NOT NULL, rating DOUBLE,
        kept_rating DOUBLE, conflict BOOLEAN NOT NULL,
        PRIMARY KEY (dataset, sha256, row_no))""",
    "ALTER TABLE ingested_files ADD COLUMN rows_conflicting BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE ingested_files ADD COLUMN format VARCHAR",
    "ALTER TABLE ingested_files ADD COLUMN columns VARCHAR",
)

MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (1, "ingestion: interactions, rejected rows, file registry, user/item indices", _INGESTION),
    (2, "periods: policy, period table, late rows", _PERIODS),
    (3, "results: summaries, exemplars, model registry, metrics", _RESULTS),
    (4, "drop exemplars: ADER's exemplars travel in its strategy state files",
     ("DROP TABLE IF EXISTS exemplars",)),
    (5, "hardening: rows know their file's sha256 (the first one ingested from their path, for older "
        "rows), rejects are keyed by file content, duplicate and conflicting rows are kept, files "
        "record their format and column mapping", _HARDENING),
    (6, "models record what their training replayed besides the period's rows (rows, interactions, mass)",
     ("ALTER TABLE models ADD COLUMN rows_replayed BIGINT",
      "ALTER TABLE models ADD COLUMN interactions_replayed BIGINT",
      "ALTER TABLE models ADD COLUMN mass_replayed DOUBLE")),
)
"""(version, description, DDL statements), applied in order."""

SCHEMA_VERSION = MIGRATIONS[-1][0]
_IN_TRANSACTION: WeakSet[duckdb.DuckDBPyConnection] = WeakSet()
_DUCKDB_MAGIC = (8, b"DUCK")
"""A DuckDB database file has ``DUCK`` at byte 8."""


def check_catalog_path(db: str | Path) -> Path:
    """``db`` as a catalog file path, or ``ValueError`` saying why it cannot be one.

    DuckDB opens ``:memory:`` (nothing is saved) and even a CSV file (read-only, as a table)
    without complaint, so a mistyped path would seem to work and lose every write.
    """
    if str(db).strip() in ("", ":memory:") or str(db).startswith(":memory:"):
        raise ValueError(f"catalog {str(db)!r} is not a file: nothing would be saved; give a path such as relay.duckdb")
    path = Path(db)
    if path.is_dir():
        raise ValueError(f"catalog {path} is a folder; give a file path such as {path / 'relay.duckdb'}")
    if path.exists():
        offset, magic = _DUCKDB_MAGIC
        with path.open("rb") as handle:
            head = handle.read(offset + len(magic))
        if head[offset:] != magic:
            raise ValueError(f"catalog {path} is not a DuckDB database file (a data file? ingest it instead)")
    elif is_data_file(path):
        raise ValueError(f"catalog {path} looks like a data file name; the catalog is a DuckDB file (relay.duckdb)")
    return path


def connect(db: str | Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open (or create) the catalog and bring its schema to :data:`SCHEMA_VERSION`.

    Args:
        db: path of the DuckDB file (parent folders are created) or ``":memory:"``.
        read_only: open without write access; the file must exist and be up to date.

    Returns:
        An open connection with the session time zone set to UTC.

    Raises:
        CatalogBusyError: another process holds the file's lock.
        SchemaVersionError: the file has a newer schema than this code, or is read-only and old.
        FileNotFoundError: ``read_only`` and the file does not exist.
    """
    target = str(db)
    if target != ":memory:":
        path = Path(target)
        if read_only and not path.exists():
            raise FileNotFoundError(f"catalog {path} does not exist")
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(target, read_only=read_only)
    except duckdb.IOException as error:
        if "lock" not in str(error).lower():
            raise
        raise CatalogBusyError(f"{target}: {str(error).splitlines()[0]}") from error
    con.execute("SET TimeZone = 'UTC'")
    try:
        migrate(con, read_only=read_only, label=target)
    except BaseException:
        con.close()
        raise
    return con


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    """Highest applied schema version (0 for an empty database)."""
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() "
        "WHERE table_name = 'schema_version' AND NOT temporary AND database_name = current_database()"
    ).fetchall()[0][0]
    if not exists:
        return 0
    return int(con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchall()[0][0])


def migrate(
    con: duckdb.DuckDBPyConnection, *, upto: int = SCHEMA_VERSION, read_only: bool = False,
    label: str = "catalog",
) -> int:
    """Apply the migrations after the file's version, up to ``upto``, in one transaction.

    Returns:
        The schema version after migrating.
    """
    current = schema_version(con)
    if current > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{label}: schema version {current} is newer than this Relay supports "
            f"({SCHEMA_VERSION}); upgrade Relay or use another --db"
        )
    pending = [m for m in MIGRATIONS if current < m[0] <= upto]
    if not pending:
        return current
    if read_only:
        raise SchemaVersionError(
            f"{label}: schema version {current} needs migrating to {upto}; open it writable once"
        )
    with transaction(con):
        con.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
            "description VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp)"
        )
        for version, description, statements in pending:
            for statement in statements:
                con.execute(statement)
            con.execute("INSERT INTO schema_version (version, description) VALUES (?, ?)",
                        [version, description])
    return pending[-1][0]


@contextmanager
def registered(con: duckdb.DuckDBPyConnection, name: str, table: object) -> Iterator[str]:
    """Expose ``table`` (Arrow/Polars) to SQL as view ``name`` for the block, then drop the view."""
    con.register(name, table)
    try:
        yield name
    finally:
        con.unregister(name)


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """Run the block in one transaction: commit on success, roll back on any exception.

    Nested use joins the outer transaction (the outermost block commits or rolls back). Open
    outer transactions with this helper, not ``con.begin()``, so nesting is known.
    """
    if con in _IN_TRANSACTION:
        yield con
        return
    con.begin()
    _IN_TRANSACTION.add(con)
    try:
        yield con
    except BaseException:
        con.rollback()
        raise
    else:
        con.commit()
    finally:
        _IN_TRANSACTION.discard(con)
