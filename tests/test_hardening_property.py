"""Property test of ingestion's accounting (issue 13): for any mix of good and bad CSV records,
every record read lands in exactly one place, and re-ingesting changes nothing.

A seed file and a weekly calendar policy come first, so generated rows also hit stored keys
(duplicates, conflicting duplicates) and a finished week (late rows). Bounded: 50 examples
of at most 40 records (about 10 s).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage import catalog, forget, ingest, periods

T0 = 1_704_067_200   # 2024-01-01, a Monday
DAY = 86_400
SEED_ROWS = [("1", "a", "4", T0 + DAY), ("2", "b", "3", T0 + 36 * DAY)]   # week 0 finishes, week 5 is open
TIMES = [T0 + DAY, T0 + 2 * DAY, T0 + 36 * DAY, T0 + 37 * DAY, T0 + 40 * DAY]   # late, or in the open week 5
USERS = ["1", "01", "1.0", "2", '"2"', "u3", "café"]
ITEMS = ["a", "A", "b", "007", "7"]
RATINGS = ["4", "4.0", "3", "", "2.5"]

good = st.builds(
    lambda u, i, r, t, crlf: f"{u},{i},{r},{t}".encode() + (b"\r\n" if crlf else b"\n"),
    st.sampled_from(USERS), st.sampled_from(ITEMS), st.sampled_from(RATINGS), st.sampled_from(TIMES), st.booleans(),
)
multiline = st.builds(lambda u, t: f'{u},"x\ny",4,{t}\n'.encode(), st.sampled_from(USERS), st.sampled_from(TIMES))
bad = st.sampled_from([
    f",a,4,{T0}\n", f"1,,4,{T0}\n", "1,a,4,\n", "1,a,4,yesterday\n", "1,a,4,5\n", "1,a,4,160000\n",
    "1,a,4,4102444800\n", f"1,a,four,{T0}\n", "1,a,4\n", f"1,a,4,{T0},x\n", f"1\x00,a,4,{T0}\n",
    f'1,a"x,4,{T0}\n',
]).map(str.encode) | st.just(f"1\xff,a,4,{T0}\n".encode("latin-1"))
records = st.lists(st.one_of(good, good, multiline, bad), min_size=1, max_size=40)
blank_lines = st.lists(st.integers(min_value=0, max_value=40), max_size=3)

TABLES = ("interactions", "late_rows", "rejected_rows", "duplicate_rows", "users", "items")


def snapshot(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    """Every row the catalog holds for the dataset (minus who holds it)."""
    out = {table: sorted(con.execute(f"SELECT * FROM {table} WHERE dataset = 'p'").fetchall(), key=repr)
           for table in TABLES}
    out["stored"] = sorted(con.execute(
        "SELECT user_id, item_id, rating, ts, period FROM interactions WHERE dataset = 'p' "
        "UNION ALL SELECT user_id, item_id, rating, ts, -1 - coalesce(period, 0) FROM late_rows "
        "WHERE dataset = 'p'").fetchall(), key=repr)
    return out


def check_accounting(con: duckdb.DuckDBPyConnection, report: ingest.IngestReport, n_records: int) -> None:
    """The report's counts add up to the records read and match what the catalog holds."""
    assert report.rows_read == n_records
    assert sum(report.reasons.values()) == report.rows_rejected

    def count(table: str, column: str, extra: str = "") -> int:
        return con.execute(f"SELECT count(*) FROM {table} WHERE dataset = 'p' AND {column} = ? {extra}",
                           [report.sha256]).fetchall()[0][0]

    held = (count("interactions", "source_sha"), count("late_rows", "source_sha"),
            count("duplicate_rows", "sha256", "AND NOT conflict"), count("duplicate_rows", "sha256", "AND conflict"),
            count("rejected_rows", "sha256"))
    assert held == (report.rows_ok, report.rows_late, report.rows_duplicate, report.rows_conflicting,
                    report.rows_rejected)
    recorded = con.execute(
        "SELECT rows_ok + rows_late + rows_duplicate + rows_conflicting + rows_rejected FROM ingested_files "
        "WHERE dataset = 'p' AND sha256 = ?", [report.sha256]).fetchall()
    assert recorded == [(n_records,)]


@settings(max_examples=50, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=records, blanks=blank_lines)
def test_every_record_lands_once_and_reingesting_changes_nothing(rows: list[bytes], blanks: list[int]) -> None:
    body = list(rows)
    for at in blanks:
        body.insert(min(at, len(body)), b"\n")
    data = b"user,item,rating,ts\n" + b"".join(body)
    with tempfile.TemporaryDirectory() as folder:
        seed, path, copy = Path(folder) / "seed.csv", Path(folder) / "log.csv", Path(folder) / "copy.csv"
        seed.write_text("user,item,rating,ts\n" + "".join(f"{u},{i},{r},{t}\n" for u, i, r, t in SEED_ROWS))
        path.write_bytes(data)
        copy.write_bytes(data + b"\n")                                      # other bytes, same records
        con = catalog.connect(":memory:")
        ingest.ingest_file(con, seed, dataset="p")
        periods.cut_periods(con, dataset="p", policy="calendar:week")
        report = ingest.ingest_file(con, path, dataset="p")
        check_accounting(con, report, len(rows))
        after = snapshot(con)

        assert ingest.ingest_file(con, path, dataset="p").skipped              # the same file: nothing
        assert snapshot(con) == after
        again = ingest.ingest_file(con, copy, dataset="p")                     # the same records
        check_accounting(con, again, len(rows))
        assert (again.rows_ok, again.rows_late, again.rows_rejected) == (0, 0, report.rows_rejected)
        assert snapshot(con)["stored"] == after["stored"]

        forget.forget_file(con, dataset="p", file=report.sha256)            # the copy holds every row
        assert snapshot(con)["stored"] == after["stored"]
        assert con.execute("SELECT rows_ok + rows_late + rows_duplicate + rows_conflicting + rows_rejected "
                           "FROM ingested_files WHERE sha256 = ?", [again.sha256]).fetchall() == [(len(rows),)]
        con.close()
