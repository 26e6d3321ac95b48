"""Ingestion: formats, bad-row reasons, idempotence, atomicity, stable indices, the CLI."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from relay.cli import app
from storage import catalog, ingest, landing
from storage.errors import IngestError

FIXTURES = Path(__file__).parent / "fixtures" / "ingest"
REPO = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared"
MLS = REPO / "data" / "ml-latest-small" / "ratings.csv"
TABLES = ("interactions", "rejected_rows", "ingested_files", "users", "items", "late_rows")

# Line number -> reason for every bad line of fixtures/ingest/bad_rows.csv.
BAD_LINES = {
    5: "missing user id", 6: "missing item id", 7: "missing timestamp", 8: "unparsable timestamp",
    9: "non-numeric rating", 10: "wrong column count", 11: "wrong column count", 12: "nul byte",
    13: "timestamp before floor", 14: "timestamp in the future", 15: "invalid encoding",
    18: "non-numeric rating", 21: "timestamp before floor",
}
# Good lines: 2 unix s, 3 ISO-8601, 4 unix ms, 17 quoted fields with a comma, 20 empty rating;
# line 16 repeats line 2 exactly and line 19 is blank.
GOOD_LINES = {2: ("u1", "i1", 964982703), 3: ("u1", "i2", 964982703), 4: ("u2", "i1", 964982703),
              17: ("u5", "i,5", 964982800), 20: ("u6", "i6", 964982900)}


def counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    return {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in TABLES}


@pytest.fixture
def con(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    connection = catalog.connect(tmp_path / "c.duckdb")
    yield connection
    connection.close()


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_bad_rows_each_reason_recorded_good_rows_land(con: duckdb.DuckDBPyConnection) -> None:
    report = ingest.ingest_file(con, FIXTURES / "bad_rows.csv", dataset="d")
    assert (report.rows_ok, report.rows_rejected, report.rows_duplicate) == (5, 13, 1)
    rejected = dict(con.execute("SELECT row_no, reason FROM rejected_rows").fetchall())
    assert rejected == BAD_LINES
    assert set(BAD_LINES.values()) == set(ingest.REASONS) - {"bad quoting"}
    raw = dict(con.execute("SELECT row_no, raw FROM rejected_rows").fetchall())
    assert raw[11] == "u3,i3,4.0,964982703,extra" and raw[12] == "u3\x00,i3,4.0,964982703"
    landed = {r[0]: r[1:] for r in con.execute(
        "SELECT row_no, user_id, item_id, ts FROM interactions").fetchall()}
    assert landed == GOOD_LINES
    ratings = dict(con.execute("SELECT row_no, rating FROM interactions").fetchall())
    assert ratings[2] == 4.0 and ratings[20] is None
    assert report.reasons["wrong column count"] == 2 and sum(report.reasons.values()) == 13


def test_bad_rows_cli_exit_0_and_prints_reasons(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["ingest", str(FIXTURES / "bad_rows.csv"), "--dataset", "d", "--db", str(tmp_path / "c.duckdb")])
    assert result.exit_code == 0, result.output
    assert "ingested 5, rejected 13 (reasons: " in result.output
    assert "nul byte: 1" in result.output and "wrong column count: 2" in result.output


@pytest.mark.parametrize(
    ("name", "message"),
    [("empty.csv", "empty file"), ("header_only.csv", "no data rows"),
     ("missing_ts.csv", "missing required column(s) for ts"), ("nope.csv", "no such file")],
)
def test_unusable_file_exit_2_one_line_and_no_writes(tmp_path: Path, name: str, message: str) -> None:
    db = tmp_path / "c.duckdb"
    result = CliRunner().invoke(app, ["ingest", str(FIXTURES / name), "--dataset", "d", "--db", str(db)])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr and name in result.stderr
    con = catalog.connect(db, read_only=True)
    assert counts(con) == dict.fromkeys(TABLES, 0)
    con.close()


def test_unknown_mapped_column_raises_and_writes_nothing(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    path = write(tmp_path / "a.csv", "u,i,t\n1,2,3\n")
    with pytest.raises(IngestError, match="missing column 'when'"):
        ingest.ingest_file(con, path, dataset="d", columns={"user": "u", "item": "i", "ts": "when"})
    assert counts(con) == dict.fromkeys(TABLES, 0)


def test_reingest_same_file_or_same_rows_changes_nothing(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    first = ingest.ingest_file(con, FIXTURES / "bad_rows.csv", dataset="d")
    before = counts(con)
    again = ingest.ingest_file(con, FIXTURES / "bad_rows.csv", dataset="d")
    assert again.skipped and again.rows_ok == 0 and counts(con) == before
    copy = shutil.copy(FIXTURES / "bad_rows.csv", tmp_path / "copy.csv")
    with open(copy, "a") as handle:       # different bytes, same good rows
        handle.write("\n")
    third = ingest.ingest_file(con, copy, dataset="d")
    assert not third.skipped and third.rows_ok == 0 and third.rows_duplicate == first.rows_ok + 1
    after = counts(con)
    assert {t: after[t] for t in ("interactions", "users", "items")} == {
        t: before[t] for t in ("interactions", "users", "items")}


def test_formats_and_timestamp_kinds_agree(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    rows = [("1", "10", 4.0, 964982703), ("1", "11", 3.0, 964982800), ("2", "10", 5.0, 964983000)]
    frame = pl.DataFrame(rows, schema=["uid", "iid", "stars", "when"], orient="row")
    frame.write_parquet(tmp_path / "a.parquet")
    write(tmp_path / "b.tsv", "user_id\titem_id\trating\ttimestamp\n"
          + "".join(f"{u}\t{i}\t{r}\t{t * 1000}\n" for u, i, r, t in rows))
    write(tmp_path / "c.dat", "".join(f"{u}::{i}::{r}::{t}\n" for u, i, r, t in rows))
    write(tmp_path / "d.inter", "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
          + "".join(f"{u}\t{i}\t{r}\t{t}.0\n" for u, i, r, t in rows))
    write(tmp_path / "e.csv", "Time,who,what\r\n" + "".join(   # ISO-8601 with offsets, CRLF
        f"{datetime.fromtimestamp(t, tz=timezone(timedelta(hours=2))).isoformat()},{u},{i}\r\n"
        for u, i, _, t in rows))
    mapping = {"user": "uid", "item": "iid", "rating": "stars", "ts": "when"}
    for name, columns in (("a.parquet", mapping), ("b.tsv", None), ("c.dat", None), ("d.inter", None),
                          ("e.csv", {"user": "who", "item": "what"})):
        dataset = name.split(".")[0]
        report = ingest.ingest_file(con, tmp_path / name, dataset=dataset, columns=columns)
        assert (report.rows_ok, report.rows_rejected) == (3, 0), (name, report)
        got = con.execute(
            "SELECT user_id, item_id, ts FROM interactions WHERE dataset = ? ORDER BY ts", [dataset]
        ).fetchall()
        assert got == [(u, i, t) for u, i, _, t in rows], name
    assert ingest.ingest_file(con, tmp_path / "c.dat", dataset="x", fmt="movielens").fmt == "movielens"


def test_indices_dense_stable_and_in_first_appearance_order(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    write(tmp_path / "a.csv", "user,item,ts\nb,y,1000000200\na,x,1000000100\nb,x,1000000300\n")
    ingest.ingest_file(con, tmp_path / "a.csv", dataset="d")
    write(tmp_path / "b.csv", "user,item,ts\nc,z,1000000050\na,w,1000000400\nb,y,1000000500\n")
    ingest.ingest_file(con, tmp_path / "b.csv", dataset="d")
    items = dict(con.execute("SELECT external_id, idx FROM items").fetchall())
    users = dict(con.execute("SELECT external_id, idx FROM users").fetchall())
    assert items == {"x": 0, "y": 1, "z": 2, "w": 3}      # z appears earliest in file 2
    assert users == {"a": 0, "b": 1, "c": 2}


def test_crash_mid_ingest_leaves_catalog_as_before(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest.ingest_file(con, write(tmp_path / "a.csv", "user,item,ts\na,x,1000000100\n"), dataset="d")
    before = counts(con)

    def land_then_crash(con: duckdb.DuckDBPyConnection, **kwargs) -> tuple[int, int]:
        landing.admit_rows(con, **kwargs)
        raise OSError("disk vanished")

    monkeypatch.setattr(ingest, "admit_rows", land_then_crash)
    with pytest.raises(OSError):
        ingest.ingest_file(con, FIXTURES / "bad_rows.csv", dataset="d")
    assert counts(con) == before


def test_ml_latest_small_counts_and_rerun(tmp_path: Path) -> None:
    db = str(tmp_path / "c.duckdb")
    first = CliRunner().invoke(app, ["ingest", str(MLS), "--dataset", "mls", "--db", db])
    second = CliRunner().invoke(app, ["ingest", str(MLS), "--dataset", "mls", "--db", db])
    assert first.exit_code == second.exit_code == 0, first.output + second.output
    assert "ingested 100836, rejected 0 (reasons: none)" in first.output
    assert "already ingested" in second.output
    for result in (first, second):
        assert "100,836 interactions, 610 users, 9,724 items" in result.output


def test_ml_100k_recbole_counts(con: duckdb.DuckDBPyConnection) -> None:
    path = SHARED / "data" / "ml-100k" / "ml-100k.inter"
    if not path.exists():
        pytest.skip("../shared/data/ml-100k is absent")
    report = ingest.ingest_file(con, path, dataset="ml100k")
    assert (report.fmt, report.rows_ok, report.rows_rejected) == ("recbole", 100_000, 0)
    assert counts(con)["users"] == 943 and counts(con)["items"] == 1_682


def test_quoted_fields_bad_quoting_and_first_duplicate_wins(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    path = write(tmp_path / "q.csv", 'user,item,rating,ts\n"u1","i,1",4,1e9\nu2,i"x,4,1e9\n'
                 '"u3",i3,"5",1e9\nu4,i4,2.0,1e9\nu4,i4,3.0,1e9\nu4,i4,2,1e9\n')
    report = ingest.ingest_file(con, path, dataset="d")
    assert (report.rows_ok, report.rows_rejected, report.rows_duplicate, report.rows_conflicting) == (3, 1, 1, 1)
    assert con.execute("SELECT row_no, reason FROM rejected_rows").fetchall() == [(3, "bad quoting")]
    stored = con.execute("SELECT user_id, item_id, rating FROM interactions ORDER BY row_no").fetchall()
    assert stored == [("u1", "i,1", 4.0), ("u3", "i3", 5.0), ("u4", "i4", 2.0)]
