"""Cut a dataset's interactions into periods (docs/architecture.md §3) and keep them current.

Policies:

* ``equal-count:N`` — sort by (ts, user index, item index) and give the interaction of 0-based
  rank r the period ⌊r·N/total⌋: N periods whose sizes differ by at most one. All are
  ``finished`` (the research protocol); rows ingested later than the last period stay unassigned.
* ``calendar:day|week|month[,grace=2d][,horizon=90d]`` — UTC windows (weeks start on Monday). A
  window with interactions is a period; it is ``finished`` once the watermark exceeds its end +
  grace. The watermark is the latest ingested ts that is at most ``horizon`` (default 90 days)
  past the 99th percentile of the dataset's timestamps: a lone far-future row (a typo, a clock
  error) then cannot close every window before it; such rows stay stored and are reported
  (:func:`watermark`). With fewer than 100 rows the percentile is the maximum, so nothing is
  ignored. Open windows are recomputed after each ingest; finished ones never change.

``start_ts`` / ``end_ts`` are inclusive unix seconds: the first and last interaction of an
equal-count period, the window bounds of a calendar period. Each interaction stores its period
in ``interactions.period`` so period matrices are plain SQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import duckdb
import polars as pl

from storage.catalog import transaction
from storage.errors import PeriodPolicyError
from storage.landing import land_rows
from storage.layout import check_name

_GRACE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
DEFAULT_HORIZON_S = 90 * 86_400
"""How far past the 99th percentile of the timestamps a row may lie and still move the watermark."""
WATERMARK_QUANTILE = 0.99
_STEPS = {"day": "INTERVAL 1 DAY", "week": "INTERVAL 7 DAY", "month": "INTERVAL 1 MONTH"}
_RESET_TABLES = ("summaries", "summary_runs", "models", "metrics")


@dataclass(frozen=True)
class EqualCount:
    """``equal-count:n``."""

    n: int

    def __str__(self) -> str:
        return f"equal-count:{self.n}"


@dataclass(frozen=True)
class Calendar:
    """``calendar:freq[,grace=…][,horizon=…]`` with the grace and the horizon in seconds."""

    freq: str
    grace_s: int = 0
    horizon_s: int = DEFAULT_HORIZON_S

    def __str__(self) -> str:
        options = [f"grace={_duration(self.grace_s)}"] if self.grace_s else []
        options += [f"horizon={_duration(self.horizon_s)}"] if self.horizon_s != DEFAULT_HORIZON_S else []
        return ",".join([f"calendar:{self.freq}", *options])


def _duration(seconds: int) -> str:
    unit = next(u for u in ("w", "d", "h", "m", "s") if seconds % _GRACE_UNITS[u] == 0)
    return f"{seconds // _GRACE_UNITS[unit]}{unit}"


def parse_policy(policy: str) -> EqualCount | Calendar:
    """Parse ``equal-count:17`` or ``calendar:week[,grace=2d][,horizon=90d]``.

    Raises:
        PeriodPolicyError: the text matches neither form.
    """
    text = policy.strip().lower()
    if m := re.fullmatch(r"equal-count:(\d+)", text):
        n = int(m.group(1))
        if n < 1:
            raise PeriodPolicyError(f"policy {policy!r}: the number of periods must be >= 1")
        return EqualCount(n)
    if m := re.fullmatch(r"calendar:(day|week|month)((?:,(?:grace|horizon)=\d+[smhdw])*)", text):
        options = re.findall(r",(grace|horizon)=(\d+)([smhdw])", m.group(2))
        seconds = {name: int(n) * _GRACE_UNITS[unit] for name, n, unit in options}
        if len(seconds) == len(options) and seconds.get("horizon", 1) > 0:
            return Calendar(m.group(1), seconds.get("grace", 0), seconds.get("horizon", DEFAULT_HORIZON_S))
    raise PeriodPolicyError(
        f"policy {policy!r}: expected equal-count:N or calendar:day|week|month[,grace=2d][,horizon=90d]"
    )


@dataclass(frozen=True)
class Watermark:
    """A dataset's watermark: ``ts`` (None without interactions), the ``limit`` past which rows
    do not move it (None unless the policy is a calendar), and how many stored rows lie beyond."""

    ts: int | None
    limit: int | None = None
    beyond: int = 0


def watermark(con: duckdb.DuckDBPyConnection, *, dataset: str) -> Watermark:
    """The timestamp that decides which calendar windows are finished (module docstring)."""
    text = current_policy(con, dataset=dataset)
    policy = parse_policy(text) if text else None
    return _watermark(con, dataset=dataset, horizon_s=policy.horizon_s if isinstance(policy, Calendar) else None)


def rows_beyond_horizon(con: duckdb.DuckDBPyConnection, *, dataset: str, sha: str) -> int:
    """How many stored rows of the file with SHA-256 ``sha`` lie past the watermark's limit."""
    limit = watermark(con, dataset=dataset).limit
    if limit is None:
        return 0
    return int(con.execute(
        "SELECT count(*) FROM interactions WHERE dataset = ? AND source_sha = ? AND ts > ?", [dataset, sha, limit]
    ).fetchall()[0][0])


def _watermark(con: duckdb.DuckDBPyConnection, *, dataset: str, horizon_s: int | None) -> Watermark:
    high = con.execute(
        "SELECT quantile_disc(ts, ?), max(ts) FROM interactions WHERE dataset = ?", [WATERMARK_QUANTILE, dataset]
    ).fetchall()[0]
    if horizon_s is None or high[0] is None:
        return Watermark(high[1])
    limit = int(high[0]) + horizon_s
    latest, beyond = con.execute(
        "SELECT max(ts) FILTER (WHERE ts <= ?), count(*) FILTER (WHERE ts > ?) FROM interactions "
        "WHERE dataset = ?",
        [limit, limit, dataset],
    ).fetchall()[0]
    return Watermark(latest, limit, int(beyond))


def current_policy(con: duckdb.DuckDBPyConnection, *, dataset: str) -> str | None:
    """The dataset's policy in canonical form, or None if periods were never cut."""
    row = con.execute("SELECT policy FROM period_policy WHERE dataset = ?", [dataset]).fetchall()
    return row[0][0] if row else None


def missing_policy_message(con: duckdb.DuckDBPyConnection, *, dataset: str) -> str:
    """What to tell a caller who gave no policy for a dataset that has none yet."""
    if _count(con, "interactions", dataset) == 0:
        return f"dataset {dataset!r} has no interactions: give data to ingest and a policy (e.g. equal-count:17)"
    return f"dataset {dataset!r} has no period policy yet: give one (e.g. equal-count:17)"


def list_periods(con: duckdb.DuckDBPyConnection, *, dataset: str) -> pl.DataFrame:
    """Period table: period, start_ts, end_ts, n_interactions, status (ordered by period)."""
    return con.sql(
        "SELECT period::BIGINT AS period, start_ts, end_ts, n_interactions, status FROM periods "
        "WHERE dataset = ? ORDER BY period",
        params=[dataset],
    ).pl()


def finished_frontier(con: duckdb.DuckDBPyConnection, *, dataset: str) -> int | None:
    """Last second covered by a finished period (rows at or before it are late), or None."""
    return con.execute(
        "SELECT max(end_ts) FROM periods WHERE dataset = ? AND status = 'finished'", [dataset]
    ).fetchall()[0][0]


def reset_impact(con: duckdb.DuckDBPyConnection, *, dataset: str) -> dict[str, int]:
    """What a reset of the dataset's periods drops (row counts per table) or re-admits."""
    impact = {
        "periods": _count(con, "periods", dataset),
        "finished_periods": int(con.execute(
            "SELECT count(*) FROM periods WHERE dataset = ? AND status = 'finished'", [dataset]
        ).fetchall()[0][0]),
    }
    impact |= {table: _count(con, table, dataset) for table in _RESET_TABLES}
    impact["late_rows_readmitted"] = _count(con, "late_rows", dataset)
    return impact


def describe_impact(impact: dict[str, int]) -> str:
    """One-line text of :func:`reset_impact` counts, e.g. ``17 periods (17 finished), 3 models``."""
    parts = [f"{impact['periods']} periods ({impact['finished_periods']} finished)"]
    parts += [f"{v} {k.replace('_', ' ')}" for k, v in impact.items()
              if v and k not in ("periods", "finished_periods")]
    return ", ".join(parts)


def cut_periods(
    con: duckdb.DuckDBPyConnection, *, dataset: str, policy: str, reset: bool = False
) -> pl.DataFrame:
    """Set the dataset's period policy, assign every interaction a period, return the table.

    Re-applying the current policy only brings open periods up to date. Another policy, when
    finished periods exist, needs ``reset=True``: it drops the periods and everything keyed by
    them (summaries, summary runs, model registry rows, metrics; files on disk stay)
    and re-admits late rows as ordinary interactions. See :func:`reset_impact`.

    Raises:
        PeriodPolicyError: bad policy, no interactions, or a change that needs ``reset``.
    """
    check_name(dataset)
    wanted = str(parse_policy(policy))
    with transaction(con):
        if _count(con, "interactions", dataset) == 0:
            raise PeriodPolicyError(f"dataset {dataset!r} has no interactions; ingest a file first")
        current = current_policy(con, dataset=dataset)
        if current is not None and (reset or current != wanted):
            impact = reset_impact(con, dataset=dataset)
            if impact["finished_periods"] and not reset:
                dropped = describe_impact(impact)
                raise PeriodPolicyError(
                    f"dataset {dataset!r} has {impact['finished_periods']} finished periods under "
                    f"{current}; changing to {wanted} drops {dropped}: pass --reset (reset=True)"
                )
            _drop_periods(con, dataset=dataset)
        con.execute(
            "INSERT OR REPLACE INTO period_policy (dataset, policy) VALUES (?, ?)", [dataset, wanted]
        )
        refresh_periods(con, dataset=dataset)
    return list_periods(con, dataset=dataset)


def refresh_periods(con: duckdb.DuckDBPyConnection, *, dataset: str) -> None:
    """Bring periods up to date after new interactions (no-op without a policy)."""
    text = current_policy(con, dataset=dataset)
    if text is None:
        return
    policy = parse_policy(text)
    with transaction(con):
        if isinstance(policy, EqualCount):
            if _count(con, "periods", dataset) == 0:
                _cut_equal_count(con, dataset=dataset, n=policy.n)
        else:
            _recut_calendar(con, dataset=dataset, policy=policy)
        _update_first_seen(con, dataset=dataset)


def _count(con: duckdb.DuckDBPyConnection, table: str, dataset: str) -> int:
    return int(con.execute(f"SELECT count(*) FROM {table} WHERE dataset = ?", [dataset]).fetchall()[0][0])


def _cut_equal_count(con: duckdb.DuckDBPyConnection, *, dataset: str, n: int) -> None:
    total = _count(con, "interactions", dataset)
    if total < n:
        raise PeriodPolicyError(f"equal-count:{n} needs at least {n} interactions; {dataset!r} has {total}")
    con.execute(
        "UPDATE interactions SET period = r.p FROM (SELECT user_idx, item_idx, ts, "
        "((row_number() OVER (ORDER BY ts, user_idx, item_idx) - 1) * ? // ?)::INTEGER AS p "
        "FROM interactions WHERE dataset = ?) r WHERE interactions.dataset = ? "
        "AND interactions.user_idx = r.user_idx AND interactions.item_idx = r.item_idx "
        "AND interactions.ts = r.ts",
        [n, total, dataset, dataset],
    )
    con.execute(
        "INSERT INTO periods SELECT ?, period, min(ts), max(ts), count(*), 'finished' "
        "FROM interactions WHERE dataset = ? GROUP BY period",
        [dataset, dataset],
    )


def _recut_calendar(con: duckdb.DuckDBPyConnection, *, dataset: str, policy: Calendar) -> None:
    """Recompute the open windows after the last finished one; finished windows stay as they are."""
    last = con.execute(
        "SELECT max(period), max(end_ts) FROM periods WHERE dataset = ? AND status = 'finished'",
        [dataset],
    ).fetchall()[0]
    last_period = -1 if last[0] is None else int(last[0])
    frontier = last[1]
    con.execute("DELETE FROM periods WHERE dataset = ? AND status = 'open'", [dataset])
    con.execute(
        "UPDATE interactions SET period = NULL WHERE dataset = ? AND period > ?", [dataset, last_period]
    )
    window = f"date_trunc('{policy.freq}', to_timestamp(ts))"
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _relay_windows AS "
        f"SELECT epoch({window})::BIGINT AS start_ts, "
        f"epoch({window} + {_STEPS[policy.freq]})::BIGINT - 1 AS end_ts, count(*) AS n "
        "FROM interactions WHERE dataset = ? AND period IS NULL AND ts > ? GROUP BY ALL",
        [dataset, -1 if frontier is None else frontier],
    )
    mark = _watermark(con, dataset=dataset, horizon_s=policy.horizon_s).ts
    con.execute(
        "INSERT INTO periods SELECT ?, ? + row_number() OVER (ORDER BY start_ts), start_ts, end_ts, n, "
        "CASE WHEN ? > end_ts + ? THEN 'finished' ELSE 'open' END FROM _relay_windows",
        [dataset, last_period, mark, policy.grace_s],
    )
    con.execute(
        "UPDATE interactions SET period = p.period FROM periods p WHERE interactions.dataset = ? "
        "AND p.dataset = ? AND interactions.period IS NULL "
        "AND interactions.ts BETWEEN p.start_ts AND p.end_ts",
        [dataset, dataset],
    )
    con.execute("DROP TABLE _relay_windows")


def _update_first_seen(con: duckdb.DuckDBPyConnection, *, dataset: str) -> None:
    for table, column in (("users", "user_idx"), ("items", "item_idx")):
        con.execute(
            f"UPDATE {table} SET first_seen_period = f.p FROM (SELECT {column} AS idx, min(period) AS p "
            f"FROM interactions WHERE dataset = ? GROUP BY {column}) f WHERE {table}.dataset = ? "
            f"AND {table}.idx = f.idx AND {table}.first_seen_period IS DISTINCT FROM f.p",
            [dataset, dataset],
        )


def _drop_periods(con: duckdb.DuckDBPyConnection, *, dataset: str) -> None:
    """Forget the period cut and everything keyed by it; late rows become interactions."""
    for table in ("periods", *_RESET_TABLES):
        con.execute(f"DELETE FROM {table} WHERE dataset = ?", [dataset])
    con.execute("UPDATE interactions SET period = NULL WHERE dataset = ? AND period IS NOT NULL", [dataset])
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _relay_readmit AS SELECT l.user_id, l.item_id, l.rating, l.ts, "
        "l.source_file, l.source_sha, l.row_no FROM (SELECT * FROM late_rows WHERE dataset = ?) l "
        "ANTI JOIN (SELECT user_id, item_id, ts FROM interactions WHERE dataset = ?) i "
        "USING (user_id, item_id, ts)",
        [dataset, dataset],
    )
    land_rows(con, dataset=dataset, source="_relay_readmit")
    con.execute("DROP TABLE _relay_readmit")
    con.execute("DELETE FROM late_rows WHERE dataset = ?", [dataset])
