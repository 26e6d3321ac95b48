"""Validated, idempotent ingestion of interaction files (docs/architecture.md §2).

One call reads one file (:mod:`storage.readers`, by its exact path), validates every record in
SQL and, in one transaction, puts each record in exactly one place:

* ``rejected_rows``: a bad record, with its row number, raw text and the first reason it failed;
* ``interactions``: a good row whose key (dataset, user, item, ts) is new, ids normalised by
  :mod:`storage.ids`; new users and items get dense indices (:mod:`storage.landing`);
* ``late_rows``: a new row that falls in an already-finished period;
* ``duplicate_rows``: a good row whose key is already taken, by a stored row or by an earlier row
  of the same file, with its rating and the kept one; ``conflict`` when the two differ (a
  conflicting duplicate: same user, item and time, another rating). The first row wins.

Every record read is counted once: ``rows_read = rows_ok + rows_late + rows_duplicate +
rows_conflicting + rows_rejected``. The file is recorded in ``ingested_files`` by the SHA-256 of
its bytes, with its counts, format and column mapping; every row it left anywhere carries that
SHA-256, so a fixed file (same path, new content) keeps its own rejects and ``relay forget`` can
take one file's rows out again (:mod:`storage.forget`).

Timestamps may be unix seconds, unix milliseconds (any number with magnitude >= 1e11, i.e. past
the year 5138 if read as seconds) or ISO-8601 text (a missing offset means UTC). A timestamp
before ``ts_floor`` (default 1995-01-01 UTC: a truncated ``5`` or ``160000`` would otherwise be a
1970 date) or more than a day after ``now`` is rejected.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from storage.arrays import file_sha256
from storage.catalog import registered, transaction
from storage.errors import IngestError
from storage.ids import normalised_id_sql
from storage.landing import admit_rows
from storage.layout import check_name
from storage.periods import finished_frontier, refresh_periods, rows_beyond_horizon
from storage.readers import FORMATS, ROLES, Staged, detect_format, normalise_name, stage_parquet, stage_text

REASONS = (
    "invalid encoding", "nul byte", "wrong column count", "bad quoting", "missing user id",
    "missing item id", "missing timestamp", "unparsable timestamp", "timestamp before floor",
    "timestamp in the future", "non-numeric rating",
)
"""Every reason a row can be rejected for, in the order they are checked (first match wins)."""

DEFAULT_TS_FLOOR = 788_918_400
"""1995-01-01 00:00:00 UTC: the earliest timestamp accepted unless ``ts_floor`` says otherwise."""
MS_THRESHOLD = 1e11
FUTURE_SLACK_S = 86_400
_VALID, _KEYS = "_relay_valid", "_relay_keys"


@dataclass(frozen=True)
class IngestReport:
    """What one :func:`ingest_file` call did.

    ``rows_ok`` counts rows newly stored in ``interactions``; ``rows_late`` new rows kept out of
    finished periods; ``rows_duplicate`` and ``rows_conflicting`` good rows whose key was taken
    (same rating, another rating); ``rows_rejected`` bad records (``reasons``: count per reason).
    ``rows_beyond_horizon``: stored rows too far past the bulk of the data to move a calendar
    policy's watermark (:func:`storage.periods.watermark`). ``problem``: why a caller skipped a
    file that cannot be ingested at all (:meth:`unusable`).
    """

    path: str
    dataset: str
    rows_ok: int
    rows_rejected: int
    rows_duplicate: int
    reasons: dict[str, int]
    skipped: bool
    rows_late: int = 0
    rows_conflicting: int = 0
    rows_beyond_horizon: int = 0
    sha256: str = ""
    fmt: str = ""
    seconds: float = 0.0
    columns: dict[str, str] = field(default_factory=dict)
    problem: str = ""

    @classmethod
    def unusable(cls, path: str | Path, *, dataset: str, problem: str) -> IngestReport:
        """The report of a file skipped because :func:`ingest_file` raised ``IngestError``."""
        return cls(str(path), dataset, 0, 0, 0, {}, True, problem=problem)

    @property
    def rows_read(self) -> int:
        """Records read from the file (each is in exactly one of the counted places)."""
        return self.rows_ok + self.rows_late + self.rows_duplicate + self.rows_conflicting + self.rows_rejected


def ingest_file(
    con: duckdb.DuckDBPyConnection, path: str | Path, *, dataset: str, fmt: str = "auto",
    columns: dict[str, str] | None = None, now: float | None = None, ts_floor: int = DEFAULT_TS_FLOOR,
) -> IngestReport:
    """Ingest one interaction file into ``dataset``.

    Args:
        con: writable catalog connection (:func:`storage.catalog.connect`).
        path: CSV/TSV with a header, Parquet, MovieLens ``::`` ``.dat`` or RecBole ``.inter``;
            text formats may be gzip or zstd compressed. Read by this exact path (no globbing).
        dataset: dataset name the rows belong to (:func:`storage.layout.check_name`).
        fmt: one of :data:`storage.readers.FORMATS`; ``auto`` uses the ending, then the content.
        columns: optional role -> header name mapping, roles ``user``, ``item``, ``rating``, ``ts``;
            roles left out are found by common names (userId, movie_id, timestamp, …).
        now: unix time used for the "more than a day in the future" check (default: clock).
        ts_floor: unix seconds; earlier timestamps are rejected (``timestamp before floor``).

    Returns:
        An :class:`IngestReport`; ``skipped`` when a file with the same SHA-256 was already ingested.

    Raises:
        IngestError: unreadable or empty file, no data rows, a required column is missing, or the
            same file was ingested with another format or mapping; nothing is written.
        ValueError: a bad argument (names it).
    """
    started = time.perf_counter()
    path = Path(path)
    _check_args(path, dataset=dataset, fmt=fmt, columns=columns)
    sha = file_sha256(path)
    done = con.execute(
        "SELECT format, columns FROM ingested_files WHERE dataset = ? AND sha256 = ?", [dataset, sha]
    ).fetchall()
    if done:
        _check_same_reading(path, dataset=dataset, sha=sha, fmt=fmt, columns=columns, done=done[0])
        return IngestReport(str(path), dataset, 0, 0, 0, {}, True, sha256=sha)
    resolved = detect_format(path) if fmt == "auto" else fmt
    staged = stage_parquet(path, columns=columns) if resolved == "parquet" else stage_text(
        path, fmt=resolved, columns=columns)
    mapping = {role: staged.layout.header[i] for role, i in staged.layout.positions.items()}
    try:
        with _views(con, staged):
            _validate(con, staged, now=time.time() if now is None else now, ts_floor=ts_floor)
        if con.execute(f"SELECT count(*) FROM {_VALID}").fetchall()[0][0] == 0:
            raise IngestError(f"{path}: no data rows")
        with transaction(con):
            counts = _store(con, path=path, dataset=dataset, sha=sha, fmt=resolved, mapping=mapping)
    finally:
        for table in (_VALID, _KEYS):
            con.execute(f"DROP TABLE IF EXISTS {table}")
    return IngestReport(
        str(path), dataset, counts["ok"], counts["rejected"], counts["duplicate"], counts["reasons"],
        False, rows_late=counts["late"], rows_conflicting=counts["conflicting"],
        rows_beyond_horizon=rows_beyond_horizon(con, dataset=dataset, sha=sha), sha256=sha, fmt=resolved,
        seconds=time.perf_counter() - started, columns=mapping,
    )


def _check_args(path: Path, *, dataset: str, fmt: str, columns: dict[str, str] | None) -> None:
    check_name(dataset)
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


def _check_same_reading(
    path: Path, *, dataset: str, sha: str, fmt: str, columns: dict[str, str] | None, done: tuple
) -> None:
    """An already-ingested file is skipped only if it would be read the same way again."""
    done_fmt, done_columns = done[0], json.loads(done[1]) if done[1] else {}
    changed = [f"format {done_fmt}"] if fmt not in ("auto", done_fmt) and done_fmt else []
    changed += [
        f"{role}={done_columns[role]}" for role, name in (columns or {}).items()
        if role in done_columns and normalise_name(name) != normalise_name(done_columns[role])
    ]
    if changed:
        raise IngestError(
            f"{path}: already ingested into {dataset!r} (sha256 {sha[:12]}) with {', '.join(changed)}; "
            f"to read it another way, first run: relay forget --dataset {dataset} --file {sha[:12]}"
        )


@contextmanager
def _views(con: duckdb.DuckDBPyConnection, staged: Staged) -> Iterator[None]:
    """Register the staged Arrow tables for the duration of the block."""
    with ExitStack() as stack:
        for name, table in staged.views.items():
            stack.enter_context(registered(con, name, table))
        yield


def _validate(con: duckdb.DuckDBPyConnection, staged: Staged, *, now: float, ts_floor: int) -> None:
    """Materialise the staged rows with normalised ids, parsed ts/rating and their first failing
    reason."""
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
        "WHEN ts_s < ? THEN 'timestamp before floor' "
        "WHEN ts_s > ? THEN 'timestamp in the future' "
        "WHEN rating_txt IS NOT NULL AND rating IS NULL THEN 'non-numeric rating' END AS reason FROM p) "
        "SELECT row_no, CASE WHEN reason IS NOT NULL THEN raw END AS raw, reason, "
        f"CASE WHEN reason IS NULL THEN {normalised_id_sql('user_txt')} END AS user_id, "
        f"CASE WHEN reason IS NULL THEN {normalised_id_sql('item_txt')} END AS item_id, rating, "
        "CASE WHEN reason IS NULL THEN floor(ts_s)::BIGINT END AS ts FROM r",
        [*staged.params, MS_THRESHOLD, ts_floor, now + FUTURE_SLACK_S],
    )


def _store(
    con: duckdb.DuckDBPyConnection, *, path: Path, dataset: str, sha: str, fmt: str, mapping: dict[str, str]
) -> dict:
    """Write rejects, duplicates, late rows and new interactions, refresh periods, register the file."""
    source = str(path.resolve())
    con.execute(
        "INSERT INTO rejected_rows (dataset, sha256, source_file, row_no, raw, reason) "
        f"SELECT ?, ?, ?, row_no, raw, reason FROM {_VALID} WHERE reason IS NOT NULL",
        [dataset, sha, source],
    )
    reasons = dict(con.execute(
        f"SELECT reason, count(*) FROM {_VALID} WHERE reason IS NOT NULL GROUP BY reason ORDER BY 2 DESC, 1"
    ).fetchall())
    n_duplicate, n_conflicting = _keep_duplicates(con, dataset=dataset, sha=sha)
    con.execute(f"DELETE FROM {_KEYS} WHERE taken")
    n_ok, n_late = admit_rows(con, dataset=dataset, source=_KEYS, frontier=finished_frontier(con, dataset=dataset),
                              origin=(source, sha))
    refresh_periods(con, dataset=dataset)
    counts = {"ok": n_ok, "rejected": sum(reasons.values()), "duplicate": n_duplicate,
              "conflicting": n_conflicting, "late": n_late, "reasons": reasons}
    con.execute(
        "INSERT INTO ingested_files (dataset, path, sha256, rows_ok, rows_rejected, rows_duplicate, "
        "rows_late, rows_conflicting, format, columns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [dataset, source, sha, n_ok, counts["rejected"], n_duplicate, n_late, n_conflicting, fmt,
         json.dumps(mapping, sort_keys=True)],
    )
    return counts


def _keep_duplicates(con: duckdb.DuckDBPyConnection, *, dataset: str, sha: str) -> tuple[int, int]:
    """Find each good key's first row (table ``_relay_keys``) and whether the key is taken; store
    the other rows in ``duplicate_rows``.

    Returns:
        (exact duplicates, conflicting duplicates).
    """
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_KEYS} AS SELECT v.*, coalesce(k.taken, false) AS taken, "
        "CASE WHEN k.taken THEN k.rating ELSE v.rating END AS kept_rating FROM "
        "(SELECT user_id, item_id, ts, arg_min_null(rating, row_no) AS rating, min(row_no) AS row_no, "
        f"count(*) AS n FROM {_VALID} WHERE reason IS NULL GROUP BY user_id, item_id, ts) v "
        "LEFT JOIN (SELECT user_id, item_id, ts, rating, true AS taken FROM interactions WHERE dataset = ? "
        "UNION ALL SELECT user_id, item_id, ts, rating, true FROM late_rows WHERE dataset = ?) k "
        "USING (user_id, item_id, ts)",
        [dataset, dataset],
    )
    con.execute(
        "INSERT INTO duplicate_rows (dataset, sha256, row_no, user_id, item_id, ts, rating, kept_rating, conflict) "
        "SELECT ?, ?, g.row_no, g.user_id, g.item_id, g.ts, g.rating, k.kept_rating, "
        "g.rating IS DISTINCT FROM k.kept_rating "
        f"FROM (SELECT user_id, item_id, ts, row_no, rating FROM {_VALID} WHERE reason IS NULL) g "
        f"JOIN (SELECT user_id, item_id, ts, row_no AS first_row, taken, kept_rating FROM {_KEYS} "
        "WHERE taken OR n > 1) k USING (user_id, item_id, ts) WHERE k.taken OR g.row_no <> k.first_row",
        [dataset, sha],
    )
    exact, conflicting = con.execute(
        "SELECT count(*) FILTER (WHERE NOT conflict), count(*) FILTER (WHERE conflict) FROM duplicate_rows "
        "WHERE dataset = ? AND sha256 = ?",
        [dataset, sha],
    ).fetchall()[0]
    return int(exact), int(conflicting)
