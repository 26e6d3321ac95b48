"""Validated, idempotent ingestion of interaction files (docs/architecture.md §2).

One call reads one file with DuckDB (:mod:`storage.readers`), validates every row in SQL and, in
one transaction: stores bad rows in ``rejected_rows`` with their row number, raw text and a
reason; stores each good row once (natural key dataset, user, item, ts); sends rows that fall in
already-finished periods to ``late_rows``; gives new users/items dense indices; brings the
dataset's periods up to date; records the file's sha256 so the same file is skipped next time.

Timestamps may be unix seconds, unix milliseconds (any number with magnitude >= 1e11, i.e. past
the year 5138 if read as seconds) or ISO-8601 text (a missing offset means UTC).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from storage.arrays import file_sha256
from storage.catalog import transaction
from storage.errors import IngestError
from storage.landing import land_rows
from storage.periods import finished_frontier, refresh_periods
from storage.readers import FORMATS, ROLES, Staged, detect_format, stage_parquet, stage_text

REASONS = (
    "invalid encoding", "nul byte", "wrong column count", "bad quoting", "missing user id",
    "missing item id", "missing timestamp", "unparsable timestamp", "timestamp before 1970",
    "timestamp in the future", "non-numeric rating",
)
"""Every reason a row can be rejected for, in the order they are checked (first match wins)."""

MS_THRESHOLD = 1e11
FUTURE_SLACK_S = 86_400
_VALID, _NEW = "_relay_valid", "_relay_new"


@dataclass(frozen=True)
class IngestReport:
    """What one :func:`ingest_file` call did.

    ``rows_ok`` counts rows newly stored in ``interactions``; ``rows_duplicate`` good rows already
    stored (or repeated in the file); ``rows_late`` good rows kept out of finished periods.
    """

    path: str
    dataset: str
    rows_ok: int
    rows_rejected: int
    rows_duplicate: int
    reasons: dict[str, int]
    skipped: bool
    rows_late: int = 0
    sha256: str = ""
    fmt: str = ""
    seconds: float = 0.0
    columns: dict[str, str] = field(default_factory=dict)


def ingest_file(
    con: duckdb.DuckDBPyConnection, path: str | Path, *, dataset: str, fmt: str = "auto",
    columns: dict[str, str] | None = None, now: float | None = None,
) -> IngestReport:
    """Ingest one interaction file into ``dataset``.

    Args:
        con: writable catalog connection (:func:`storage.catalog.connect`).
        path: CSV/TSV with a header, Parquet, MovieLens ``::`` ``.dat`` or RecBole ``.inter``.
        dataset: dataset name the rows belong to.
        fmt: one of :data:`storage.readers.FORMATS`; ``auto`` uses suffix, then content.
        columns: optional role -> header name mapping, roles ``user``, ``item``, ``rating``, ``ts``;
            roles left out are found by common names (userId, movie_id, timestamp, …).
        now: unix time used for the "more than a day in the future" check (default: clock).

    Returns:
        An :class:`IngestReport`; ``skipped`` when a file with the same sha256 was already ingested.

    Raises:
        IngestError: unreadable or empty file, or a required column is missing; nothing written.
        ValueError: a bad argument (names it).
    """
    started = time.perf_counter()
    path = Path(path)
    _check_args(path, dataset=dataset, fmt=fmt, columns=columns)
    sha = file_sha256(path)
    done = con.execute(
        "SELECT 1 FROM ingested_files WHERE dataset = ? AND sha256 = ?", [dataset, sha]
    ).fetchall()
    if done:
        return IngestReport(str(path), dataset, 0, 0, 0, {}, True, sha256=sha)
    resolved = detect_format(path) if fmt == "auto" else fmt
    staged = (
        stage_parquet(con, path, columns=columns) if resolved == "parquet"
        else stage_text(con, path, fmt=resolved, columns=columns)
    )
    try:
        _validate(con, staged, now=time.time() if now is None else now)
        if con.execute(f"SELECT count(*) FROM {_VALID}").fetchall()[0][0] == 0:
            raise IngestError(f"{path}: no data rows")
        with transaction(con):
            counts = _store(con, path=path, dataset=dataset, sha=sha)
    finally:
        for table in (*staged.temp_tables, _VALID, _NEW):
            con.execute(f"DROP TABLE IF EXISTS {table}")
    return IngestReport(
        str(path), dataset, counts["ok"], counts["rejected"], counts["duplicate"], counts["reasons"],
        False, rows_late=counts["late"], sha256=sha, fmt=resolved,
        seconds=time.perf_counter() - started,
        columns={role: staged.layout.header[i] for role, i in staged.layout.positions.items()},
    )


def _check_args(path: Path, *, dataset: str, fmt: str, columns: dict[str, str] | None) -> None:
    if not dataset or not dataset.strip():
        raise ValueError("dataset must be a non-empty name")
    if fmt not in FORMATS:
        raise ValueError(f"fmt {fmt!r} is not one of {', '.join(FORMATS)}")
    unknown = sorted(set(columns or {}) - set(ROLES))
    if unknown:
        raise ValueError(f"columns has unknown role(s) {unknown}; roles are {', '.join(ROLES)}")
    if not path.exists():
        raise IngestError(f"{path}: no such file")
    if not path.is_file():
        raise IngestError(f"{path}: not a regular file")
    if not os.access(path, os.R_OK):
        raise IngestError(f"{path}: unreadable (permission denied)")
    if path.stat().st_size == 0:
        raise IngestError(f"{path}: empty file")


def _validate(con: duckdb.DuckDBPyConnection, staged: Staged, *, now: float) -> None:
    """Materialise the staged rows with parsed ts/rating and their first failing reason."""
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_VALID} AS "
        f"WITH stage AS ({staged.sql}), "
        "n AS (SELECT *, try_cast(ts_txt AS DOUBLE) AS ts_any, try_cast(rating_txt AS DOUBLE) AS r_any "
        "FROM stage), "
        "p AS (SELECT *, CASE WHEN isfinite(ts_any) THEN CASE WHEN abs(ts_any) >= ? THEN ts_any / 1000 "
        "ELSE ts_any END WHEN ts_any IS NULL THEN epoch(try_cast(ts_txt AS TIMESTAMPTZ)) END AS ts_s, "
        "CASE WHEN isfinite(r_any) THEN r_any END AS rating FROM n), "
        "r AS (SELECT *, CASE "
        "WHEN pre_reason IS NOT NULL THEN pre_reason "
        "WHEN user_txt IS NULL THEN 'missing user id' "
        "WHEN item_txt IS NULL THEN 'missing item id' "
        "WHEN ts_txt IS NULL THEN 'missing timestamp' "
        "WHEN ts_s IS NULL THEN 'unparsable timestamp' "
        "WHEN ts_s < 0 THEN 'timestamp before 1970' "
        "WHEN ts_s > ? THEN 'timestamp in the future' "
        "WHEN rating_txt IS NOT NULL AND rating IS NULL THEN 'non-numeric rating' END AS reason FROM p) "
        "SELECT row_no, CASE WHEN reason IS NOT NULL THEN raw END AS raw, reason, "
        "user_txt AS user_id, item_txt AS item_id, rating, "
        "CASE WHEN reason IS NULL THEN floor(ts_s)::BIGINT END AS ts FROM r",
        [*staged.params, MS_THRESHOLD, now + FUTURE_SLACK_S],
    )


def _store(con: duckdb.DuckDBPyConnection, *, path: Path, dataset: str, sha: str) -> dict:
    """Write rejects, late rows and new interactions, refresh periods, register the file."""
    source = str(path.resolve())
    con.execute(
        "INSERT OR IGNORE INTO rejected_rows SELECT ?, ?, row_no, raw, reason FROM "
        f"{_VALID} WHERE reason IS NOT NULL",
        [dataset, source],
    )
    reasons = dict(con.execute(
        f"SELECT reason, count(*) FROM {_VALID} WHERE reason IS NOT NULL GROUP BY reason ORDER BY 2 DESC, 1"
    ).fetchall())
    n_good = con.execute(f"SELECT count(*) FROM {_VALID} WHERE reason IS NULL").fetchall()[0][0]
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_NEW} AS SELECT v.user_id, v.item_id, v.rating, v.ts, "
        "? AS source_file, v.row_no FROM "
        "(SELECT user_id, item_id, ts, arg_min_null(rating, row_no) AS rating, min(row_no) AS row_no "
        f"FROM {_VALID} WHERE reason IS NULL GROUP BY user_id, item_id, ts) v "
        "ANTI JOIN (SELECT user_id, item_id, ts FROM interactions WHERE dataset = ? "
        "UNION ALL SELECT user_id, item_id, ts FROM late_rows WHERE dataset = ?) k "
        "USING (user_id, item_id, ts)",
        [source, dataset, dataset],
    )
    n_new = con.execute(f"SELECT count(*) FROM {_NEW}").fetchall()[0][0]
    n_late = _divert_late(con, dataset=dataset)
    n_ok = land_rows(con, dataset=dataset, source=_NEW)
    refresh_periods(con, dataset=dataset)
    counts = {"ok": n_ok, "rejected": sum(reasons.values()), "duplicate": n_good - n_new,
              "late": n_late, "reasons": reasons}
    con.execute(
        "INSERT INTO ingested_files (dataset, path, sha256, rows_ok, rows_rejected, rows_duplicate, "
        "rows_late) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [dataset, source, sha, n_ok, counts["rejected"], counts["duplicate"], n_late],
    )
    return counts


def _divert_late(con: duckdb.DuckDBPyConnection, *, dataset: str) -> int:
    """Move new rows at or before the finished frontier from ``_relay_new`` to ``late_rows``."""
    frontier = finished_frontier(con, dataset=dataset)
    if frontier is None:
        return 0
    con.execute(
        "INSERT INTO late_rows (dataset, user_id, item_id, rating, ts, source_file, row_no, period) "
        "SELECT ?, n.user_id, n.item_id, n.rating, n.ts, n.source_file, n.row_no, "
        "(SELECT max(p.period) FROM periods p WHERE p.dataset = ? AND p.start_ts <= n.ts) "
        f"FROM {_NEW} n WHERE n.ts <= ?",
        [dataset, dataset, frontier],
    )
    late = con.execute(f"SELECT count(*) FROM {_NEW} WHERE ts <= ?", [frontier]).fetchall()[0][0]
    con.execute(f"DELETE FROM {_NEW} WHERE ts <= ?", [frontier])
    return int(late)
