"""Periods: equal-count sizes, calendar windows and watermark, late rows, policy changes."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pytest
import scipy.sparse as sp
from typer.testing import CliRunner

from relay.cli import app
from storage import catalog, ingest, periods, results, summaries
from storage.errors import PeriodPolicyError

MLS = Path(__file__).resolve().parents[1] / "data" / "ml-latest-small" / "ratings.csv"
MONDAY = 1_704_067_200          # 2024-01-01 00:00:00 UTC, a Monday
DAY, WEEK = 86_400, 7 * 86_400


@pytest.fixture
def con(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    connection = catalog.connect(tmp_path / "c.duckdb")
    yield connection
    connection.close()


def add(con: duckdb.DuckDBPyConnection, path: Path, rows: list[tuple[str, str, int]]) -> ingest.IngestReport:
    path.write_text("user,item,ts\n" + "".join(f"{u},{i},{t}\n" for u, i, t in rows))
    return ingest.ingest_file(con, path, dataset="d")


def test_equal_count_17_on_ml_latest_small(con: duckdb.DuckDBPyConnection) -> None:
    ingest.ingest_file(con, MLS, dataset="mls")
    table = periods.cut_periods(con, dataset="mls", policy="equal-count:17")
    sizes = table["n_interactions"].to_numpy()
    assert table["period"].to_list() == list(range(17))
    assert set(table["status"]) == {"finished"}
    assert sizes.sum() == 100_836 and sizes.max() - sizes.min() <= 1
    by_period = con.execute(
        "SELECT period, count(*), min(ts), max(ts) FROM interactions WHERE dataset = 'mls' "
        "GROUP BY period ORDER BY period").fetchall()
    assert [n for _, n, _, _ in by_period] == sizes.tolist()
    assert all(a[3] <= b[2] for a, b in zip(by_period, by_period[1:]))   # time-ordered
    again = periods.cut_periods(con, dataset="mls", policy="equal-count:17")
    assert again.equals(table)


def test_equal_count_ties_are_split_stably(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    add(con, tmp_path / "a.csv", [(f"u{k}", f"i{k % 3}", MONDAY) for k in range(10)])
    table = periods.cut_periods(con, dataset="d", policy="equal-count:3")
    assert table["n_interactions"].to_list() == [4, 3, 3]
    first = con.execute("SELECT user_idx, period FROM interactions ORDER BY user_idx").fetchall()
    periods.cut_periods(con, dataset="d", policy="equal-count:3", reset=True)
    assert con.execute("SELECT user_idx, period FROM interactions ORDER BY user_idx").fetchall() == first


def test_calendar_week_open_until_watermark_passes_end_plus_grace(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    add(con, tmp_path / "a.csv", [("a", "x", MONDAY + DAY), ("b", "y", MONDAY + 3 * DAY)])
    table = periods.cut_periods(con, dataset="d", policy="calendar:week,grace=1d")
    assert table.rows() == [(0, MONDAY, MONDAY + WEEK - 1, 2, "open")]
    add(con, tmp_path / "b.csv", [("a", "y", MONDAY + WEEK + 12 * 3600)])   # inside the grace
    assert periods.list_periods(con, dataset="d")["status"].to_list() == ["open", "open"]
    add(con, tmp_path / "c.csv", [("c", "z", MONDAY + WEEK + 2 * DAY)])     # past end + grace
    table = periods.list_periods(con, dataset="d")
    assert table["status"].to_list() == ["finished", "open"]
    assert table["n_interactions"].to_list() == [2, 2]


def test_late_rows_kept_out_of_finished_periods(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    add(con, tmp_path / "a.csv", [("a", "x", MONDAY + DAY), ("b", "y", MONDAY + WEEK + 3 * DAY)])
    periods.cut_periods(con, dataset="d", policy="calendar:week")
    assert periods.list_periods(con, dataset="d")["status"].to_list() == ["finished", "open"]
    report = add(con, tmp_path / "late.csv", [("c", "x", MONDAY + 2 * DAY), ("c", "y", MONDAY + WEEK)])
    assert (report.rows_late, report.rows_ok) == (1, 1)
    assert con.execute("SELECT user_id, ts, period FROM late_rows").fetchall() == [("c", MONDAY + 2 * DAY, 0)]
    assert periods.list_periods(con, dataset="d")["n_interactions"].to_list() == [1, 2]
    again = add(con, tmp_path / "late2.csv", [("c", "x", MONDAY + 2 * DAY)])   # same late row again
    assert (again.rows_late, again.rows_duplicate) == (0, 1)
    con.close()
    db = str(tmp_path / "c.duckdb")
    result = CliRunner().invoke(app, ["stats", "--dataset", "d", "--json", "--db", db])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output)
    assert (stats["interactions"], stats["late_rows"], len(stats["periods"])) == (3, 1, 2)


def test_policy_change_needs_reset_and_reset_drops_dependents(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    add(con, tmp_path / "a.csv", [("a", "x", MONDAY + DAY), ("b", "y", MONDAY + WEEK + DAY)])
    periods.cut_periods(con, dataset="d", policy="calendar:day")
    add(con, tmp_path / "late.csv", [("c", "x", MONDAY)])
    results.write_metrics(con, dataset="d", strategy="joint", trained_through=0, evaluated_on=1,
                          values=[("ndcg", 10, 1.0)], run_id="r")
    summaries.write_summary(con, dataset="d", period=0, run_id="r", summary=sp.csr_matrix(np.ones((1, 2))),
                            params={}, seed=0, loss=0.0, density=1.0, seconds=1.0)
    with pytest.raises(PeriodPolicyError, match=r"has 1 finished periods.*1 metrics.*pass --reset"):
        periods.cut_periods(con, dataset="d", policy="equal-count:2")
    assert periods.current_policy(con, dataset="d") == "calendar:day"
    impact = periods.reset_impact(con, dataset="d")
    assert impact["late_rows_readmitted"] == 1 and impact["summaries"] == 2
    table = periods.cut_periods(con, dataset="d", policy="equal-count:2", reset=True)
    assert table["n_interactions"].to_list() == [2, 1]
    assert results.read_metrics(con, dataset="d").is_empty()
    assert summaries.summarised_periods(con, dataset="d") == []
    assert con.execute("SELECT count(*) FROM late_rows").fetchall() == [(0,)]


@pytest.mark.parametrize(
    "bad", ["equal-count:0", "equal-count:x", "calendar:year", "calendar:week,grace=2", ""]
)
def test_bad_policy_is_rejected(con: duckdb.DuckDBPyConnection, tmp_path: Path, bad: str) -> None:
    add(con, tmp_path / "a.csv", [("a", "x", MONDAY)])
    with pytest.raises(PeriodPolicyError, match="policy"):
        periods.cut_periods(con, dataset="d", policy=bad)


def test_cut_without_interactions_or_too_few(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    with pytest.raises(PeriodPolicyError, match="no interactions"):
        periods.cut_periods(con, dataset="d", policy="equal-count:2")
    add(con, tmp_path / "a.csv", [("a", "x", MONDAY)])
    with pytest.raises(PeriodPolicyError, match="needs at least 2"):
        periods.cut_periods(con, dataset="d", policy="equal-count:2")
    assert periods.current_policy(con, dataset="d") is None


def test_periods_cli_prints_table_and_refuses_change(tmp_path: Path) -> None:
    db = str(tmp_path / "c.duckdb")
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", str(MLS), "--dataset", "mls", "--db", db]).exit_code == 0
    result = runner.invoke(app, ["periods", "--dataset", "mls", "--policy", "equal-count:17", "--db", db])
    assert result.exit_code == 0 and "17 periods, 100,836 interactions" in result.output
    refused = runner.invoke(app, ["periods", "--dataset", "mls", "--policy", "calendar:month", "--db", db])
    assert refused.exit_code == 2 and "--reset" in refused.stderr
    reset = runner.invoke(
        app, ["periods", "--dataset", "mls", "--policy", "calendar:year", "--reset", "--db", db])
    assert reset.exit_code == 2 and "calendar:year" in reset.stderr
    stats = runner.invoke(app, ["stats", "--dataset", "mls", "--db", db])
    assert stats.exit_code == 0 and "policy           equal-count:17" in stats.output
