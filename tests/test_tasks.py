"""Task-level tests: file hand-off format, report helpers, keys, parameters, CLI report."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp
from pydantic import ValidationError

from flows.params import BackfillParams, Budgets, ContinualParams
from tasks.artifacts import artifact_key
from tasks.files import content_key, csr_arrays, csr_from, read_arrays, write_arrays
from tasks.report import long_table, pivot_metric, plot_metric


def test_array_files_round_trip_and_hash_by_content(tmp_path) -> None:
    m = sp.random(7, 11, density=0.3, format="csr", random_state=0, dtype=np.float32)
    arrays = csr_arrays(m, prefix="rows") | {"item_mask": np.arange(11) % 2 == 0}
    sha1 = write_arrays(tmp_path / "a.arrays", arrays)
    sha2 = write_arrays(tmp_path / "b.arrays", dict(reversed(list(arrays.items()))))
    assert sha1 == sha2  # same arrays, same bytes (no timestamps, sorted names)
    back = read_arrays(tmp_path / "a.arrays")
    assert (csr_from(back, prefix="rows") != m).nnz == 0
    assert back["item_mask"].dtype == bool
    assert back["item_mask"].tolist() == arrays["item_mask"].tolist()
    assert csr_from(back, prefix="past") is None
    m2 = m.copy()
    m2.data[0] += 1
    assert write_arrays(tmp_path / "c.arrays", csr_arrays(m2, prefix="rows")) != sha1


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
    assert pivot.filter(pl.col("strategy") == "joint")["mean"].item() == pytest.approx(21.0)
    long = long_table(_metrics())
    assert long.height == 6 and {"ndcg@10", "hr@100", "auc"} <= set(long.columns)


def test_plot_is_a_png() -> None:
    assert plot_metric(_metrics(), metric="ndcg", k=10)[:8] == b"\x89PNG\r\n\x1a\n"


def test_parameters_are_bounded() -> None:
    with pytest.raises(ValidationError, match="end"):
        BackfillParams(dataset="d", start=3, end=2)
    with pytest.raises(ValidationError):
        ContinualParams(dataset="d", strategies=["bogus"])
    with pytest.raises(ValidationError):
        ContinualParams(dataset="bad name!")
    with pytest.raises(ValidationError):
        Budgets(distill_steps=0)
    assert Budgets(n_fake_users=30).replay_kwargs()["exemplar_budget"] == 30


def test_relay_report_prints_table_and_writes_plot(tmp_path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from relay.cli import app
    from storage import catalog, results

    db = tmp_path / "relay.duckdb"
    monkeypatch.setenv("RELAY_DB", str(db))  # restored after the test (the CLI sets it too)
    monkeypatch.setenv("RELAY_STORAGE_ROOT", str(tmp_path / "storage"))
    con = catalog.connect(db)
    for s, base in (("joint", 20.0), ("individual", 10.0)):
        for t in range(2):
            results.write_metrics(
                con, dataset="d", strategy=s, trained_through=t, evaluated_on=t + 1,
                values={"ndcg@10": base + t, "hr@100": 2 * base, "auc": 0.9}, run_id="r",
            )
    con.close()
    out = tmp_path / "plot.png"
    args = ["report", "--dataset", "d", "--db", str(db), "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "joint" in result.output and "20.50" in result.output  # mean nDCG@10 of joint
    assert out.read_bytes()[:4] == b"\x89PNG"
    missing = CliRunner().invoke(app, ["report", "--dataset", "nope", "--db", str(db)])
    assert missing.exit_code != 0


def test_progress_reporter_moves_its_artifact(prefect_harness) -> None:
    from prefect import flow
    from prefect.client.orchestration import get_client

    from tasks.artifacts import ProgressReporter

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
