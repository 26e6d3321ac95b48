"""Take one ingested file's rows out of a dataset again (``relay forget``).

A file is ingested once per content (its SHA-256), so a file read with a wrong column mapping
would stay wrong for good. :func:`forget_file` removes everything the file left (its
interactions, late, rejected and duplicate rows, its ``ingested_files`` record), after which the
file can be ingested again, e.g. with another ``--columns`` mapping.

It refuses while any of the file's interactions lies in a finished period: those periods may
already be distilled, trained and evaluated, and their results would silently stop matching
their data (reset the period policy first).

Nothing is lost when other files held the same rows: those were recorded in ``duplicate_rows``
when they were ingested, and for every key that disappears the earliest such row (by ingest
time, then row number) is stored in its place; the other duplicates of that key are compared
with the new kept rating again, and every touched file's counts are corrected. Users and items
keep their indices (indices never change). Periods that finished while the file's rows were
present stay finished.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import duckdb

from storage.arrays import file_sha256
from storage.catalog import transaction
from storage.errors import StorageError
from storage.landing import admit_rows
from storage.layout import check_name
from storage.periods import finished_frontier, refresh_periods

_TABLES = ("interactions", "late_rows")
_ORPHANS, _READMIT = "_relay_orphans", "_relay_readmit"


class ForgetError(StorageError):
    """The file is unknown or ambiguous, or its rows lie in finished periods."""


@dataclass(frozen=True)
class ForgetReport:
    """What :func:`forget_file` removed (row counts per table) and re-admitted from other files."""

    dataset: str
    path: str
    sha256: str
    removed: dict[str, int]
    readmitted: int


def forget_file(con: duckdb.DuckDBPyConnection, *, dataset: str, file: str) -> ForgetReport:
    """Remove the rows of one ingested file from ``dataset`` (module docstring).

    Args:
        con: writable catalog connection.
        dataset: the dataset the file was ingested into.
        file: the file's SHA-256 (or a unique prefix of at least 8 hex digits), or its path (the
            path it was ingested from, or a file whose current content was ingested).

    Raises:
        ForgetError: no such ingested file, several match, or its rows are in finished periods.
    """
    check_name(dataset)
    sha, path = resolve_file(con, dataset=dataset, file=file)
    blocking = [row[0] for row in con.execute(
        "SELECT DISTINCT p.period FROM interactions i JOIN periods p ON p.dataset = i.dataset "
        "AND p.period = i.period WHERE i.dataset = ? AND i.source_sha = ? AND p.status = 'finished' "
        "ORDER BY 1",
        [dataset, sha],
    ).fetchall()]
    if blocking:
        shown = ", ".join(map(str, blocking[:10])) + (", …" if len(blocking) > 10 else "")
        raise ForgetError(
            f"{path}: its rows are in finished period(s) {shown} of {dataset!r}; forgetting it would change "
            "their recorded results. Reset the periods first (relay periods --policy … --reset)"
        )
    with transaction(con):
        removed = {
            table: _delete(con, table, "sha256" if table in ("rejected_rows", "duplicate_rows") else "source_sha",
                           dataset=dataset, sha=sha)
            for table in (*_TABLES, "rejected_rows", "duplicate_rows")
        }
        con.execute("DELETE FROM ingested_files WHERE dataset = ? AND sha256 = ?", [dataset, sha])
        readmitted = _readmit_duplicates(con, dataset=dataset)
        refresh_periods(con, dataset=dataset)
    return ForgetReport(dataset, path, sha, removed, readmitted)


def resolve_file(con: duckdb.DuckDBPyConnection, *, dataset: str, file: str) -> tuple[str, str]:
    """(sha256, path) of the ingested file that ``file`` names (see :func:`forget_file`)."""
    files = con.execute(
        "SELECT sha256, path FROM ingested_files WHERE dataset = ? ORDER BY ingested_at", [dataset]
    ).fetchall()
    matches = []
    if re.fullmatch(r"[0-9a-fA-F]{8,64}", file):
        matches = [f for f in files if f[0].startswith(file.lower())]
    if not matches:
        resolved = str(Path(file).resolve())
        matches = [f for f in files if f[1] == resolved]
    if not matches and Path(file).is_file():
        current = file_sha256(file)
        matches = [f for f in files if f[0] == current]
    if not matches:
        raise ForgetError(f"{file}: no file of dataset {dataset!r} was ingested under this path or SHA-256")
    if len(matches) > 1:
        versions = ", ".join(sha[:12] for sha, _ in matches)
        raise ForgetError(f"{file}: {len(matches)} ingested versions match ({versions}); give one SHA-256")
    return matches[0]


def _delete(con: duckdb.DuckDBPyConnection, table: str, column: str, *, dataset: str, sha: str) -> int:
    where = f"FROM {table} WHERE dataset = ? AND {column} = ?"
    n = int(con.execute(f"SELECT count(*) {where}", [dataset, sha]).fetchall()[0][0])
    con.execute(f"DELETE {where}", [dataset, sha])
    return n


def _readmit_duplicates(con: duckdb.DuckDBPyConnection, *, dataset: str) -> int:
    """Store, for every key no longer held, its earliest duplicate row; fix flags and counts."""
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_ORPHANS} AS SELECT o.*, row_number() OVER "
        "(PARTITION BY o.user_id, o.item_id, o.ts ORDER BY o.ingested_at, o.sha256, o.row_no) AS k "
        "FROM (SELECT d.*, f.path AS source_file, f.ingested_at FROM duplicate_rows d JOIN ingested_files f "
        "ON f.dataset = d.dataset AND f.sha256 = d.sha256 WHERE d.dataset = ?) o "
        "ANTI JOIN (SELECT user_id, item_id, ts FROM interactions WHERE dataset = ? "
        "UNION ALL SELECT user_id, item_id, ts FROM late_rows WHERE dataset = ?) h USING (user_id, item_id, ts)",
        [dataset, dataset, dataset],
    )
    try:
        n = int(con.execute(f"SELECT count(*) FROM {_ORPHANS} WHERE k = 1").fetchall()[0][0])
        if n:
            _promote_orphans(con, dataset=dataset)
        return n
    finally:
        con.execute(f"DROP TABLE IF EXISTS {_ORPHANS}; DROP TABLE IF EXISTS {_READMIT}")


def _promote_orphans(con: duckdb.DuckDBPyConnection, *, dataset: str) -> None:
    """Move each orphaned key's first duplicate (k = 1) into the catalog, and rewrite the rest."""
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_READMIT} AS SELECT user_id, item_id, rating, ts, source_file, "
        f"sha256 AS source_sha, row_no FROM {_ORPHANS} WHERE k = 1"
    )
    admit_rows(con, dataset=dataset, source=_READMIT, frontier=finished_frontier(con, dataset=dataset))
    # Per-file count changes: the promoted rows leave the duplicate counts for rows_ok or rows_late,
    # and the remaining duplicates of those keys are compared with their new kept rating.
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _relay_deltas AS "
        "WITH w AS (SELECT user_id, item_id, ts, rating AS kept FROM "
        f"{_ORPHANS} WHERE k = 1), "
        "r AS (SELECT o.sha256, o.k, o.conflict AS was, CASE WHEN o.k = 1 THEN NULL ELSE "
        f"o.rating IS DISTINCT FROM w.kept END AS now FROM {_ORPHANS} o JOIN w USING (user_id, item_id, ts)), "
        "landed AS (SELECT source_sha AS sha256, count(*) AS n FROM interactions WHERE dataset = ? AND "
        f"(source_sha, row_no) IN (SELECT (sha256, row_no) FROM {_ORPHANS} WHERE k = 1) GROUP BY ALL) "
        "SELECT r.sha256, count(*) FILTER (WHERE (r.k = 1 AND NOT r.was) OR (r.k > 1 AND NOT r.was AND r.now)) "
        "AS lost_dup, count(*) FILTER (WHERE r.k > 1 AND r.was AND NOT r.now) AS gained_dup, "
        "count(*) FILTER (WHERE (r.k = 1 AND r.was) OR (r.k > 1 AND r.was AND NOT r.now)) AS lost_conf, "
        "count(*) FILTER (WHERE r.k > 1 AND NOT r.was AND r.now) AS gained_conf, "
        "count(*) FILTER (WHERE r.k = 1) AS promoted, any_value(coalesce(l.n, 0)) AS landed "
        "FROM r LEFT JOIN landed l USING (sha256) GROUP BY r.sha256",
        [dataset],
    )
    con.execute(
        "UPDATE ingested_files SET rows_duplicate = rows_duplicate - d.lost_dup + d.gained_dup, "
        "rows_conflicting = rows_conflicting - d.lost_conf + d.gained_conf, rows_ok = rows_ok + d.landed, "
        "rows_late = rows_late + d.promoted - d.landed FROM _relay_deltas d "
        "WHERE ingested_files.dataset = ? AND ingested_files.sha256 = d.sha256",
        [dataset],
    )
    con.execute(
        "DELETE FROM duplicate_rows WHERE dataset = ? AND (sha256, row_no) IN "
        f"(SELECT (sha256, row_no) FROM {_ORPHANS} WHERE k = 1)",
        [dataset],
    )
    con.execute(
        "UPDATE duplicate_rows SET kept_rating = w.rating, conflict = duplicate_rows.rating IS DISTINCT FROM "
        f"w.rating FROM (SELECT user_id, item_id, ts, rating FROM {_ORPHANS} WHERE k = 1) w "
        "WHERE duplicate_rows.dataset = ? AND duplicate_rows.user_id = w.user_id "
        "AND duplicate_rows.item_id = w.item_id AND duplicate_rows.ts = w.ts",
        [dataset],
    )
    con.execute("DROP TABLE _relay_deltas")
