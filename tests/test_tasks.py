"""Task-level tests: array file format, report helpers, keys, flow parameters, CLI report."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from storage.arrays import content_key, read_arrays, write_arrays
from tasks.progress import artifact_key
from tasks.report import long_table, pivot_metric, plot_metric


def test_array_files_round_trip_and_hash_by_content(tmp_path) -> None:
    m = sp.random(7, 11, density=0.3, format="csr", random_state=0, dtype=np.float32)
    arrays = {"rows": m, "item_mask": np.arange(11) % 2 == 0, "name": np.asarray("ader"), "step": np.asarray(3)}
    sha1 = write_arrays(tmp_path / "a.arrays", arrays)
    sha2 = write_arrays(tmp_path / "b.arrays", dict(reversed(list(arrays.items()))))
    assert sha1 == sha2  # same arrays, same bytes (no timestamps, sorted names)
    back = read_arrays(tmp_path / "a.arrays")
    assert sp.issparse(back["rows"]) and (back["rows"] != m).nnz == 0
    assert back["item_mask"].dtype == bool
    assert back["item_mask"].tolist() == arrays["item_mask"].tolist()
    assert (str(back["name"]), back["step"].shape, int(back["step"])) == ("ader", (), 3)
    assert "past" not in back
    m2 = m.copy()
    m2.data[0] += 1
    assert write_arrays(tmp_path / "c.arrays", {"rows": m2}) != sha1


def test_content_key_is_stable_and_sensitive() -> None:
    assert content_key("abc", {"a": 1, "b": 2}) == content_key("abc", {"b": 2, "a": 1})
    assert content_key("abc", {"a": 1}) != content_key("abd", {"a": 1})


@pytest.mark.parametrize(
    ("parts", "key"),
    [(("ML_Small", "metrics"), "ml-small-metrics"), (("a.b", "train-progress", "distill_cf"),
                                                      "a-b-train-progress-distill-cf")],
)
def test_artifact_keys_use_lowercase_digits_and_dashes(parts, key) -> None:
    assert artifact_key(*parts) == key


def _metrics() -> pl.DataFrame:
    rows = []
    for s, base in (("joint", 20.0), ("individual", 10.0)):
        for t in range(3):
            for metric, k, v in (("ndcg", 10, base + t), ("hr", 100, 2 * base), ("auc", 0, 0.9)):
                rows.append(("d", s, t, t + 1, metric, k, v, "r"))
    cols = [
        "dataset", "strategy", "trained_through", "evaluated_on", "metric", "k", "value", "run_id"
    ]
    return pl.DataFrame(rows, schema=cols, orient="row")


def test_report_tables() -> None:
    pivot = pivot_metric(_metrics(), metric="ndcg", k=10)
    assert pivot.columns == ["strategy", "p1", "p2", "p3", "mean"]
    assert dict(pivot.select("strategy", "mean").rows())["joint"] == pytest.approx(21.0)
    long = long_table(_metrics())
    assert long.height == 6 and {"ndcg@10", "hr@100", "auc"} <= set(long.columns)


def test_plot_is_a_png() -> None:
    assert plot_metric(_metrics(), metric="ndcg", k=10)[:8] == b"\x89PNG\r\n\x1a\n"


def test_flow_parameters_are_validated() -> None:
    from prefect.exceptions import ParameterTypeError

    from flows.continual import continual_flow

    with pytest.raises(ParameterTypeError, match="strategy must be one of"):
        continual_flow.validate_parameters({"dataset": "d", "strategies": ["bogus"]})
    with pytest.raises(ParameterTypeError, match="dataset name"):
        continual_flow.validate_parameters({"dataset": "bad name!"})
    with pytest.raises(ParameterTypeError, match="dataset name"):
        continual_flow.validate_parameters({"dataset": ".."})
    with pytest.raises(ParameterTypeError, match="steps"):
        continual_flow.validate_parameters({"dataset": "d", "distill": {"steps": 0}})
    # one field of a config group overrides that field and keeps the other defaults
    params = continual_flow.validate_parameters({"dataset": "d", "start": 0, "end": 1,
                                                 "training": {"mvae": {"epochs": 5}}})
    assert params["training"].mvae.epochs == 5 and params["training"].mvae.lr == 3e-3
    assert params["distill"].n_fake_users == 20 and params["gpu_pool"] is None


def test_relay_report_prints_table_and_writes_plot(tmp_path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from relay.cli import app
    from storage import catalog, results

    db = tmp_path / "relay.duckdb"
    con = catalog.connect(db)
    for s, base in (("joint", 20.0), ("individual", 10.0)):
        for t in range(2):
            results.write_metrics(
                con, dataset="d", strategy=s, trained_through=t, evaluated_on=t + 1,
                values=[("ndcg", 10, base + t), ("hr", 100, 2 * base), ("auc", 0, 0.9)], run_id="r",
            )
    for t in range(2):
        results.register_model(con, dataset="d", strategy="joint", period=t, path=f"/m{t}", rows_replayed=30 * t,
                               interactions_replayed=1200 * t, mass_replayed=1200.0 * t)
    con.close()
    out = tmp_path / "plot.png"
    args = ["report", "--dataset", "d", "--db", str(db), "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "joint" in result.output and "20.5 " in result.output  # mean nDCG@10 of joint
    assert "1200 (30)" in result.output  # interactions (rows) replayed by M_1 of joint
    assert out.read_bytes()[:4] == b"\x89PNG"
    missing = CliRunner().invoke(app, ["report", "--dataset", "nope", "--db", str(db)])
    assert missing.exit_code != 0


def test_progress_reporter_moves_its_artifact(prefect_harness) -> None:
    from prefect import flow
    from prefect.client.orchestration import get_client

    from tasks.progress import ProgressReporter

    def latest() -> float:
        with get_client(sync_client=True) as client:
            return client.read_artifacts(artifact_filter=_key("unit-progress"))[0].data

    @flow
    def steps() -> list[float]:
        report = ProgressReporter("unit-progress", total=4, description="unit", every_s=3600)
        report(1, 0.5)  # the first update goes through
        report(2, 0.4)  # within every_s of the previous one: skipped
        seen = [latest()]
        report(4, 0.3)  # the last planned step always updates
        return seen + [latest()]

    assert steps() == [25.0, 100.0]


def _key(key: str):
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    return ArtifactFilter(key=ArtifactFilterKey(any_=[key]))


def test_accuracy_matrix_and_transfer_from_recorded_evaluations() -> None:
    from tasks.report import accuracy_matrix, next_period, transfer_table

    rows = []
    for t in range(3):  # R[t, j] = 10 + j − 2·(t − j) for j ≤ t (forgetting), 5 on t+1
        for j in range(t + 2):
            value = 5.0 if j == t + 1 else 10.0 + j - 2 * (t - j)
            rows.append(("d", "individual", t, j, "ndcg", 10, value, "r"))
    cols = ["dataset", "strategy", "trained_through", "evaluated_on", "metric", "k", "value", "run_id"]
    metrics = pl.DataFrame(rows, schema=cols, orient="row")
    assert next_period(metrics)["evaluated_on"].to_list() == [1, 2, 3]
    matrix = accuracy_matrix(metrics, strategy="individual")
    assert matrix.columns == ["trained_through", "p0", "p1", "p2", "p3"]
    assert matrix.row(2) == (2, 6.0, 9.0, 12.0, 5.0)
    summary = transfer_table(metrics).row(0, named=True)
    assert summary["accuracy"] == pytest.approx((6 + 9 + 12) / 3)
    assert summary["backward_transfer"] == pytest.approx(((6 - 10) + (9 - 11)) / 2)


def test_metrics_table_is_compact_and_carries_what_each_model_replayed() -> None:
    from tasks.report import metrics_table, replay_pivot, rounded

    models = pl.DataFrame({"strategy": ["joint"] * 3 + ["individual"] * 3, "period": [0, 1, 2] * 2,
                           "path": ["p"] * 6, "rows_replayed": [0, 40, 80, 0, 0, 0],
                           "interactions_replayed": [0, 900, 1800, 0, 0, 0], "mass_replayed": [0.0] * 6})
    table = rounded(metrics_table(_metrics().with_columns(pl.col("value") + 1 / 3), models))
    assert table.columns == ["strategy", "t", "ndcg@10", "hr@100", "auc", "replayed rows", "replayed interactions"]
    joint = table.filter(pl.col("strategy") == "joint").sort("t")
    assert joint["replayed interactions"].to_list() == [0, 900, 1800]
    assert joint["ndcg@10"].to_list() == [20.33, 21.33, 22.33] and joint["auc"][0] == 1.2333  # display rounding
    pivot = replay_pivot(models)
    assert pivot.columns == ["strategy", "p0", "p1", "p2"] and pivot.row(1) == ("joint", "0 (0)", "900 (40)", "1800 (80)")
