"""Summaries, metrics and the model registry: replace by key, never duplicate."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest
import scipy.sparse as sp

from storage import catalog, results, summaries


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    connection = catalog.connect(":memory:")
    yield connection
    connection.close()


def summary(rows: list[list[float]]) -> sp.csr_matrix:
    return sp.csr_matrix(np.array(rows, dtype=np.float32))


def write(con: duckdb.DuckDBPyConnection, period: int, matrix: sp.csr_matrix, run_id: str = "r1") -> None:
    summaries.write_summary(con, dataset="d", period=period, run_id=run_id, summary=matrix,
                            params={"tau": 0.5, "mu": matrix.shape[0]}, seed=3, loss=1.5,
                            density=0.5, seconds=2.0)


def test_summaries_replace_by_period_and_stack(con: duckdb.DuckDBPyConnection) -> None:
    write(con, 0, summary([[0.5, 0, 0], [0, 1, 0]]))
    write(con, 1, summary([[0, 0, 0.25]]))
    write(con, 0, summary([[0.9, 0, 0], [0, 0, 0.1], [0, 0, 0]]), run_id="r2")    # re-run of period 0
    stacked = summaries.read_summaries(con, dataset="d", through_period=1, n_items=4)
    assert stacked.shape == (4, 4)
    np.testing.assert_allclose(stacked.toarray(), [
        [0.9, 0, 0, 0], [0, 0, 0.1, 0], [0, 0, 0, 0], [0, 0, 0.25, 0]])
    assert summaries.read_summaries(con, dataset="d", through_period=0, n_items=3).shape == (3, 3)
    assert summaries.read_summaries(con, dataset="d", through_period=-1, n_items=3).shape == (0, 3)
    assert summaries.summarised_periods(con, dataset="d") == [0, 1]
    run = con.execute("SELECT run_id, params, n_rows FROM summary_runs WHERE dataset = 'd' AND period = 0").fetchall()
    assert run == [("r2", '{"mu": 3, "tau": 0.5}', 3)]
    assert con.execute("SELECT count(*) FROM summaries WHERE period = 0").fetchall() == [(2,)]


def test_summary_values_outside_unit_interval_rejected(con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        write(con, 0, summary([[1.5, 0]]))
    with pytest.raises(ValueError, match="n_items"):
        write(con, 0, summary([[0, 0, 1]]))
        summaries.read_summaries(con, dataset="d", through_period=0, n_items=2)


def test_metrics_replace_not_duplicate(con: duckdb.DuckDBPyConnection) -> None:
    values = [("ndcg", 10, 30.0), ("hr", 100, 60.0), ("auc", 0, 0.9), ("dropped_targets", 0, 3)]
    results.write_metrics(con, dataset="d", strategy="joint", trained_through=0, evaluated_on=1,
                          values=values, run_id="a")
    results.write_metrics(con, dataset="d", strategy="joint", trained_through=0, evaluated_on=1,
                          values=[("ndcg", 10, 31.0), ("auc", 0, 0.8)], run_id="b")
    results.write_metrics(con, dataset="d", strategy="ader", trained_through=0, evaluated_on=1,
                          values=values, run_id="a")
    frame = results.read_metrics(con, dataset="d")
    assert frame.columns == ["dataset", "strategy", "trained_through", "evaluated_on", "metric", "k",
                             "value", "run_id"]
    joint = frame.filter(frame["strategy"].is_in(["joint"]))
    assert sorted(zip(joint["metric"], joint["k"], joint["value"], joint["run_id"])) == [
        ("auc", 0, 0.8, "b"), ("ndcg", 10, 31.0, "b")]
    assert len(frame) == 6


def test_model_registry_replaces(con: duckdb.DuckDBPyConnection) -> None:
    assert results.model_path(con, dataset="d", strategy="joint", period=0) is None
    results.register_model(con, dataset="d", strategy="joint", period=0, path="/a")
    results.register_model(con, dataset="d", strategy="joint", period=0, path="/b")
    assert results.model_path(con, dataset="d", strategy="joint", period=0) == "/b"
    assert con.execute("SELECT count(*) FROM models").fetchall() == [(1,)]
