"""Regression tests of issue 13 ("every bad input gets a clear error and loses nothing"), one per
case that needs no Prefect run; the flow cases are in ``test_hardening_flows.py``."""

from __future__ import annotations

import gzip
import pickle
import unicodedata
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from relay.cli import app
from storage import arrays, catalog, forget, ingest, periods
from storage.errors import IngestError
from storage.layout import Layout

T0, DAY = 1_704_067_200, 86_400    # 2024-01-01 00:00:00 UTC, a Monday; a day in seconds


@pytest.fixture
def con(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    with catalog.connect(tmp_path / "c.duckdb") as connection:
        yield connection


def csv(path: Path, rows: list[tuple], header: str = "user,item,rating,ts") -> Path:
    path.write_text(header + "\n" + "".join(",".join(map(str, row)) + "\n" for row in rows))
    return path


def cli(*args: str) -> object:
    return CliRunner().invoke(app, list(args))


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def stored(con: duckdb.DuckDBPyConnection, dataset: str = "d") -> list[tuple]:
    return con.execute(
        "SELECT user_id, item_id, rating, ts FROM interactions WHERE dataset = ? ORDER BY ALL", [dataset]
    ).fetchall()


def test_case01_glob_characters_in_a_path_read_that_exact_file(con, tmp_path: Path) -> None:
    folder = tmp_path / "g"
    folder.mkdir()
    csv(folder / "g1.csv", [("one", "x", 4, T0)])
    csv(folder / "g[1].csv", [("bracket", "x", 4, T0)])
    csv(folder / "g*.csv", [("star", "x", 4, T0)])
    pq = folder / "p[1].parquet"
    pl.DataFrame({"user": ["pq"], "item": ["x"], "ts": [T0]}).write_parquet(pq)
    for name, dataset in (("g[1].csv", "gb"), ("g*.csv", "gs"), ("p[1].parquet", "gp")):
        report = ingest.ingest_file(con, folder / name, dataset=dataset)
        assert report.rows_read == 1, name
    assert [r[0] for r in stored(con, "gb")] == ["bracket"]
    assert [r[0] for r in stored(con, "gs")] == ["star"]
    assert [r[0] for r in stored(con, "gp")] == ["pq"]
    paths = {r[0] for r in con.execute("SELECT path FROM ingested_files").fetchall()}
    assert paths == {str(folder / n) for n in ("g[1].csv", "g*.csv", "p[1].parquet")}


def test_case02_dataset_names_that_leave_the_root_are_refused_everywhere(con, tmp_path: Path) -> None:
    data = csv(tmp_path / "a.csv", [("u", "i", 4, T0)])
    root = tmp_path / "root"
    for bad in ("..", ".", "my data", "a/b", ""):
        with pytest.raises(ValueError, match="name"):
            ingest.ingest_file(con, data, dataset=bad)
        with pytest.raises(ValueError, match="name"):
            Layout(root, bad)
    before = sorted(p.name for p in tmp_path.iterdir())
    for command in (["run"], ["backfill", "--from", "0"], ["ingest", str(data)], ["periods"], ["stats"],
                    ["forget", "--file", str(data)], ["report"]):
        result = cli(*command, "--dataset", "..", "--db", str(tmp_path / "c2.duckdb"), *(
            ["--storage-root", str(root)] if command[0] in ("run", "backfill", "report") else []))
        assert_one_line_error(result, "dataset name '..' is invalid")
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no catalog, no folders beside the root


def test_case03_checkpoint_and_state_files_cannot_run_code(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "root", "d")
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (marker.touch, ())

    checkpoint = layout.checkpoint(0, "0123456789abcdef")
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(pickle.dumps(Payload()))                  # a classic pickle bomb
    with pytest.raises(ValueError):
        arrays.read_arrays(checkpoint)
    with checkpoint.open("wb") as handle:                            # an .npy record holding objects
        np.save(handle, np.asarray("state"), allow_pickle=False)
        np.save(handle, np.array([Payload()], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="allow_pickle"):
        arrays.read_arrays(checkpoint)
    assert not marker.exists()
    state = layout.model_state("ader", 1, "0123456789abcdef")
    arrays.write_arrays(state, {"weights": np.ones(3, dtype=np.float32)})
    np.testing.assert_array_equal(arrays.read_arrays(state)["weights"], np.ones(3))


def test_case05_a_fixed_file_keeps_each_versions_rejects(con, tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text(f"user,item,ts\na,x,{T0}\nb,y,not-a-time\nc,z,{T0}\n")
    first = ingest.ingest_file(con, path, dataset="d")
    path.write_text(f"user,item,ts\na,x,{T0}\nb,y,{T0}\nc,z\n")   # line 3 fixed, line 4 broken
    second = ingest.ingest_file(con, path, dataset="d")
    assert (first.rows_rejected, second.rows_rejected) == (1, 1)
    rejects = con.execute("SELECT sha256, row_no, raw, reason FROM rejected_rows ORDER BY row_no").fetchall()
    assert rejects == [(first.sha256, 3, "b,y,not-a-time", "unparsable timestamp"),
                       (second.sha256, 4, "c,z", "wrong column count")]
    recorded = con.execute(
        "SELECT f.rows_rejected, (SELECT count(*) FROM rejected_rows r WHERE r.sha256 = f.sha256) "
        "FROM ingested_files f").fetchall()
    assert all(n == m for n, m in recorded)
    assert [r[0] for r in stored(con)] == ["a", "b", "c"]


def test_case06_conflicting_duplicates_are_counted_and_quarantined_with_both_values(con, tmp_path: Path) -> None:
    first = ingest.ingest_file(con, csv(tmp_path / "a.csv", [
        ("u", "i", 4, T0), ("u", "i", 4, T0), ("u", "i", 2, T0), ("v", "i", 3, T0)]), dataset="d")
    assert (first.rows_ok, first.rows_duplicate, first.rows_conflicting, first.rows_read) == (2, 1, 1, 4)
    second = ingest.ingest_file(con, csv(tmp_path / "b.csv", [("v", "i", 5, T0), ("w", "i", 1, T0)]), dataset="d")
    assert (second.rows_ok, second.rows_duplicate, second.rows_conflicting) == (1, 0, 1)
    quarantined = con.execute(
        "SELECT user_id, rating, kept_rating, conflict FROM duplicate_rows ORDER BY user_id, row_no").fetchall()
    assert quarantined == [("u", 4.0, 4.0, False), ("u", 2.0, 4.0, True), ("v", 5.0, 3.0, True)]
    assert stored(con) == [("u", "i", 4.0, T0), ("v", "i", 3.0, T0), ("w", "i", 1.0, T0)]  # the first wins
    con.close()
    result = cli("stats", "--dataset", "d", "--json", "--db", str(tmp_path / "c.duckdb"))
    assert '"duplicate_rows": 3' in result.output and '"conflicting_rows": 2' in result.output


def test_case07_implausible_timestamps_are_rejected_and_outliers_do_not_move_the_watermark(
    con, tmp_path: Path
) -> None:
    half_written = ingest.ingest_file(con, csv(tmp_path / "h.csv", [("a", "x", 4, 5), ("b", "x", 4, 160000),
                                                                     ("c", "x", 4, T0)]), dataset="h")
    assert half_written.reasons == {"timestamp before floor": 2} and half_written.rows_ok == 1
    assert ingest.ingest_file(con, tmp_path / "h.csv", dataset="h0", ts_floor=0).rows_ok == 3
    floor = cli("ingest", str(tmp_path / "h.csv"), "--dataset", "h", "--ts-floor", "1970-01-02", "--db",
                str(tmp_path / "cli.duckdb"))
    assert "ingested 2, rejected 1 (reasons: timestamp before floor: 1)" in floor.output
    weekly = [(f"u{k}", f"i{k % 7}", 4, T0 + k * 3600) for k in range(300)]         # 12.5 days, 2 weeks
    csv(tmp_path / "jan.csv", weekly + [("typo", "i0", 4, T0 + 400 * DAY)])         # valid, a year out
    periods.cut_periods(con, dataset="h", policy="calendar:week")
    report = ingest.ingest_file(con, tmp_path / "jan.csv", dataset="h")
    assert report.rows_beyond_horizon == 1
    mark = periods.watermark(con, dataset="h")
    assert (mark.ts, mark.beyond) == (T0 + 299 * 3600, 1)
    assert periods.list_periods(con, dataset="h")["status"].to_list() == ["finished", "open", "open"]
    later = ingest.ingest_file(con, csv(tmp_path / "next.csv", [("n", "i1", 4, T0 + 16 * DAY)]), dataset="h")
    assert (later.rows_ok, later.rows_late) == (1, 0)   # not sent to late_rows by the outlier
    assert periods.parse_policy("calendar:week,horizon=400d,grace=1d") == periods.Calendar("week", DAY, 400 * DAY)


def test_case08_a_mistaken_ingest_can_be_forgotten_and_redone(tmp_path: Path) -> None:
    db = str(tmp_path / "c.duckdb")
    path = csv(tmp_path / "log.csv", [(f"user{k}", f"film{k % 3}", 4, T0 + k) for k in range(6)],
               header="uid,movie,stars,when")
    wrong = cli("ingest", str(path), "--dataset", "d", "--columns", "user=movie,item=uid,ts=when", "--db", db)
    assert wrong.exit_code == 0 and "3 users" in wrong.output
    again = cli("ingest", str(path), "--dataset", "d", "--columns", "user=uid,item=movie,ts=when", "--db", db)
    assert_one_line_error(again, "already ingested", "user=movie", "relay forget")
    forgot = cli("forget", "--dataset", "d", "--file", str(path), "--db", db)
    assert forgot.exit_code == 0 and "removed 6 interactions" in forgot.output
    right = cli("ingest", str(path), "--dataset", "d", "--columns", "user=uid,item=movie,ts=when", "--db", db)
    assert right.exit_code == 0 and "ingested 6" in right.output and "6 interactions" in right.output
    with catalog.connect(db) as connection:
        assert {r[0] for r in stored(connection)} == {f"user{k}" for k in range(6)}
    cut = cli("periods", "--dataset", "d", "--policy", "equal-count:2", "--db", db)
    assert cut.exit_code == 0
    refused = cli("forget", "--dataset", "d", "--file", str(path), "--db", db)
    assert_one_line_error(refused, "finished period(s) 0, 1")


def test_case08_forgetting_a_file_readmits_rows_other_files_also_held(con, tmp_path: Path) -> None:
    a = ingest.ingest_file(con, csv(tmp_path / "a.csv", [("u", "i", 4, T0), ("v", "i", 3, T0)]), dataset="d")
    ingest.ingest_file(con, csv(tmp_path / "b.csv", [("u", "i", 4, T0), ("v", "i", 5, T0), ("w", "i", 1, T0)]),
                       dataset="d")
    ingest.ingest_file(con, csv(tmp_path / "c.csv", [("v", "i", 3, T0)]), dataset="d")
    report = forget.forget_file(con, dataset="d", file=a.sha256[:10])
    assert report.removed["interactions"] == 2 and report.readmitted == 2
    assert stored(con) == [("u", "i", 4.0, T0), ("v", "i", 5.0, T0), ("w", "i", 1.0, T0)]
    assert con.execute("SELECT user_id, rating, kept_rating, conflict FROM duplicate_rows").fetchall() == [
        ("v", 3.0, 5.0, True)]
    files = con.execute("SELECT rows_ok, rows_duplicate, rows_conflicting, rows_late, rows_rejected FROM "
                        "ingested_files ORDER BY path").fetchall()
    assert files == [(3, 0, 0, 0, 0), (0, 0, 1, 0, 0)]
    with pytest.raises(forget.ForgetError, match="no file"):
        forget.forget_file(con, dataset="d", file=str(tmp_path / "a.csv"))


def test_case08_a_crash_during_forget_leaves_the_catalog_as_it_was(
    con, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = ingest.ingest_file(con, csv(tmp_path / "a.csv", [("u", "i", 4, T0), ("v", "i", 3, T0), ("v", "j", 1, 1)]),
                           dataset="d")
    ingest.ingest_file(con, csv(tmp_path / "b.csv", [("u", "i", 5, T0)]), dataset="d")
    tables = ("interactions", "rejected_rows", "duplicate_rows", "ingested_files")
    before = {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in tables}

    def crash(*args, **kwargs):
        raise OSError("disk vanished")

    monkeypatch.setattr(forget, "refresh_periods", crash)
    with pytest.raises(OSError):
        forget.forget_file(con, dataset="d", file=a.sha256)
    assert {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in tables} == before


def test_case09_ids_follow_one_normalisation_rule(con, tmp_path: Path) -> None:
    decomposed, composed = unicodedata.normalize("NFD", "café"), unicodedata.normalize("NFC", "café")
    csv(tmp_path / "a.csv", [("1", decomposed, 4, T0), ("01", composed, 4, T0 + 1), ("1.0", "007", 4, T0 + 2),
                             ("+1", "7.00", 4, T0 + 3), ("1.5", "A01", 4, T0 + 4)])
    ingest.ingest_file(con, tmp_path / "a.csv", dataset="d")
    pl.DataFrame({"user": [1.0, 2.0], "item": [7.0, 8.0], "ts": [T0 + 10, T0 + 11]}).write_parquet(tmp_path / "b.parquet")
    ingest.ingest_file(con, tmp_path / "b.parquet", dataset="d")
    users = [r[0] for r in con.execute("SELECT external_id FROM users ORDER BY idx").fetchall()]
    items = [r[0] for r in con.execute("SELECT external_id FROM items ORDER BY idx").fetchall()]
    assert users == ["1", "1.5", "2"]
    assert items == [composed, "7", "A01", "8"]


def test_case10_db_must_be_a_catalog_file(tmp_path: Path) -> None:
    data = csv(tmp_path / "a.csv", [("u", "i", 4, T0)])
    content = data.read_bytes()
    for db, message in ((str(data), "not a DuckDB database file"), (str(tmp_path / "x.parquet"), "data file"),
                        (":memory:", "nothing would be saved"), (str(tmp_path), "is a folder")):
        for command in (["ingest", str(data)], ["stats"], ["run"]):
            assert_one_line_error(cli(*command, "--dataset", "d", "--db", db), message)
    assert data.read_bytes() == content and not (tmp_path / "x.parquet").exists()


def test_case13_compressed_cr_only_and_multiline_fields_ingest(con, tmp_path: Path) -> None:
    body = f"user,item,rating,ts\nu1,i1,4,{T0}\nu2,i2,3,{T0}\n".encode()
    (tmp_path / "a.csv.gz").write_bytes(gzip.compress(body))
    (tmp_path / "b.tsv.zst").write_bytes(pa.compress(body.replace(b",", b"\t"), codec="zstd", asbytes=True))
    (tmp_path / "c.csv").write_bytes(body.replace(b"\n", b"\r").replace(b"u1", b"u3").replace(b"u2", b"u4"))
    (tmp_path / "d.csv").write_bytes(
        f'user,item,comment,ts\nu5,i1,"two\nlines",{T0}\r\nu6,i1,"""quoted""\r\n\r\nthree",{T0}\n'
        f'u7,i"x,stray,{T0}\n'.encode())
    expect = {"a.csv.gz": (2, 0), "b.tsv.zst": (0, 0), "c.csv": (2, 0), "d.csv": (2, 1)}
    for name, (ok, rejected) in expect.items():
        report = ingest.ingest_file(con, tmp_path / name, dataset="d")
        assert (report.rows_ok, report.rows_rejected) == (ok, rejected), (name, report)
    assert con.execute("SELECT row_no, reason FROM rejected_rows").fetchall() == [(7, "bad quoting")]
    assert con.execute("SELECT row_no, item_id FROM interactions WHERE user_id IN ('u5', 'u6') ORDER BY 1").fetchall(
    ) == [(2, "i1"), (4, "i1")]
    bad = tmp_path / "broken.csv.gz"
    bad.write_bytes(gzip.compress(body)[:-8])
    with pytest.raises(IngestError, match="corrupt gzip"):
        ingest.ingest_file(con, bad, dataset="d")


def test_case13_cli_errors_are_one_line_and_debug_shows_the_traceback(tmp_path: Path) -> None:
    db = str(tmp_path / "c.duckdb")
    assert_one_line_error(cli("ingest", str(tmp_path / "none.csv"), "--dataset", "d", "--db", db), "no such file")
    assert_one_line_error(cli("run", "--dataset", "my data", "--db", db), "'my data' is invalid")
    assert_one_line_error(cli("backfill", "--dataset", "d", "--from", "2", "--to", "1", "--db", db),
                          "--from 2 is after --to 1")
    assert_one_line_error(cli("backfill", "--dataset", "d", "--from", "-1", "--db", db), "'--from'")
    assert_one_line_error(cli("stats", "--dataset", "d", "--db", db + "-none"), "does not exist")
    assert_one_line_error(cli("periods", "--dataset", "d", "--policy", "calendar:year", "--db", db), "calendar:year")
    assert_one_line_error(cli("nosuch"), "No such command")
    bare = cli()
    assert bare.exit_code == 2 and "Usage" in bare.output and "forget" in bare.output
    debug = cli("--debug", "stats", "--dataset", "d", "--db", db)
    assert "not found in the catalog" in str(debug.exception)   # raised, so the traceback is printed


def test_a_version_4_catalog_migrates_and_its_files_can_be_forgotten(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    raw = duckdb.connect(str(path))
    catalog.migrate(raw, upto=4)
    raw.execute("INSERT INTO ingested_files (dataset, path, sha256, rows_ok, rows_rejected, rows_duplicate, "
                "rows_late) VALUES ('d', '/data/a.csv', 'ab12cd34ef56', 1, 1, 0, 0)")
    raw.execute("INSERT INTO users VALUES ('d', 'u', 0, NULL)")
    raw.execute("INSERT INTO items VALUES ('d', 'i', 0, NULL)")
    raw.execute(f"INSERT INTO interactions VALUES ('d', 'u', 'i', 4, {T0}, '/data/a.csv', 2, 0, 0, NULL)")
    raw.execute("INSERT INTO rejected_rows VALUES ('d', '/data/a.csv', 3, 'bad', 'wrong column count')")
    raw.close()
    with catalog.connect(path) as con:
        assert con.execute("SELECT source_sha FROM interactions").fetchall() == [("ab12cd34ef56",)]
        assert con.execute("SELECT sha256, row_no FROM rejected_rows").fetchall() == [("ab12cd34ef56", 3)]
        assert con.execute("SELECT rows_conflicting, format FROM ingested_files").fetchall() == [(0, None)]
        report = forget.forget_file(con, dataset="d", file="ab12cd34")
        assert report.removed == {"interactions": 1, "late_rows": 0, "rejected_rows": 1, "duplicate_rows": 0}
