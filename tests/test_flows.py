"""Flow tests on tiny synthetic data against one session-wide Prefect test harness.

One uninterrupted continual run is the reference; the other tests compare against it:
backfilling twice (the second run does no model work, the metrics table keeps one row per key),
a forced backfill (same numbers, still one row per key), and a backfill killed mid-period and
re-run (same metrics as the uninterrupted run).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from models.configs import DistillConfig, MVAEConfig, TrainingConfig

pytestmark = pytest.mark.usefixtures("prefect_harness")

TINY = {
    "distill": DistillConfig(n_fake_users=8, gamma=5, steps=2, patience=2, eval_every=1),
    "training": TrainingConfig(mvae=MVAEConfig(epochs=1, batch_size=64)),
    "seed": 0,
}
STRATEGIES = ["individual", "joint", "distill_cf", "ader"]
SOME = ["individual", "distill_cf"]  # strategies are independent: a subset gives the same numbers
N_PERIODS = 3
POLICY = f"equal-count:{N_PERIODS}"
KEY = ["strategy", "trained_through", "evaluated_on", "metric", "k"]


class Killed(RuntimeError):
    """Stands for the process dying in the middle of a period."""


@dataclass(frozen=True)
class Place:
    """A catalog and a storage root of their own: the two path parameters of every flow."""

    folder: Path

    @property
    def paths(self) -> dict[str, str]:
        return {"db": str(self.folder / "relay.duckdb"), "storage_root": str(self.folder / "storage")}


def _metrics(place: Place, dataset: str) -> pl.DataFrame:
    from tasks.catalog import metrics_frame

    return metrics_frame(place.paths["db"], dataset=dataset).sort(KEY).drop("run_id")


def _ingest(place: Place, csv: Path, dataset: str) -> list[int]:
    from flows.ingest import ingest_flow

    return ingest_flow(dataset=dataset, data=[str(csv)], policy=POLICY, db=place.paths["db"])


def _backfill(place: Place, dataset: str, *, start: int = 0, strategies=SOME, force: bool = False):
    from flows.continual import continual_flow

    return continual_flow(dataset=dataset, start=start, end=N_PERIODS - 1, strategies=strategies, force=force,
                          **TINY, **place.paths)


def _continual(place: Place, csv: Path, dataset: str, strategies=STRATEGIES):
    from flows.continual import continual_flow

    return continual_flow(dataset=dataset, data=[str(csv)], policy=POLICY, strategies=strategies, **TINY,
                          **place.paths)


def _subset(reference: dict, strategies: list[str]) -> pl.DataFrame:
    return reference["metrics"].filter(pl.col("strategy").is_in(strategies))


@pytest.fixture
def model_calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Count calls into the model code (distillation and strategy training)."""
    from models import distill_cf, strategies

    calls = {"distill": 0, "train": 0}
    distill_rows, train_strategy = distill_cf.distill_rows, strategies.train_strategy

    def counting_distill(*args, **kwargs):
        calls["distill"] += 1
        return distill_rows(*args, **kwargs)

    def counting_train(*args, **kwargs):
        calls["train"] += 1
        return train_strategy(*args, **kwargs)

    monkeypatch.setattr(distill_cf, "distill_rows", counting_distill)
    monkeypatch.setattr(strategies, "train_strategy", counting_train)
    return calls


@pytest.fixture(scope="module")
def reference(prefect_harness, synthetic_csv, tmp_path_factory) -> dict:
    """An uninterrupted continual run over every period; its outcomes and metrics."""
    from tasks.catalog import models_frame

    place = Place(tmp_path_factory.mktemp("reference"))
    outcomes = _continual(place, synthetic_csv, "ref")
    return {"outcomes": outcomes, "metrics": _metrics(place, "ref"), "again": _continual(place, synthetic_csv, "ref"),
            "models": models_frame(place.paths["db"], dataset="ref")}


def test_continual_flow_processes_every_finished_period(reference) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    assert [o.period for o in reference["outcomes"]] == list(range(N_PERIODS))
    assert all(len(o.train_metas) == len(STRATEGIES) for o in reference["outcomes"])
    assert all(len(o.summary_metas) == 1 for o in reference["outcomes"])
    metrics = reference["metrics"]
    pairs = set(metrics.select("strategy", "trained_through", "evaluated_on").unique().rows())
    tests = {(s, t, t + 1) for s in STRATEGIES for t in range(N_PERIODS - 1)}
    forgetting = {(s, t, j) for s in STRATEGIES for t in range(N_PERIODS) for j in range(t + 1)}
    assert pairs == tests | forgetting  # M_t on t+1, and on every period it trained on
    ndcg = metrics.filter((pl.col("metric") == "ndcg") & (pl.col("k") == 10))["value"]
    assert ndcg.min() >= 0 and ndcg.max() <= 100
    assert reference["again"] == []  # a second scheduled run without new data has nothing to do
    keys = ["ref-metrics", "ref-ndcg-10-plot", "ref-run-summary", "ref-distill-progress",
            "ref-train-progress", *(f"ref-train-progress-{s.replace('_', '-')}" for s in STRATEGIES)]
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=keys))
        )
    assert {a.key for a in found} == set(keys)
    table = next(a for a in found if a.key == "ref-metrics")
    rows = json.loads(table.data) if isinstance(table.data, str) else table.data
    assert table.type == "table" and {"ndcg@10", "replayed interactions"} <= set(rows[0])
    assert any("| cpu |" in str(a.data) for a in found if a.key == "ref-run-summary")  # the device of each step
    finished = [a.description for a in found if a.key.startswith("ref-train-progress-")]
    assert finished and all("done after step" in d and "(" in d for d in finished)  # last figures kept


def test_backfill_twice_does_no_model_work(
    reference, synthetic_csv, tmp_path, model_calls
) -> None:
    place = Place(tmp_path)
    assert _ingest(place, synthetic_csv, "ref") == list(range(N_PERIODS))
    first = _backfill(place, "ref")
    assert model_calls == {"distill": N_PERIODS, "train": N_PERIODS * len(SOME)}
    n_forgetting = N_PERIODS * (N_PERIODS + 1) // 2
    assert sum(len(o.evaluated) for o in first) == (N_PERIODS - 1 + n_forgetting) * len(SOME)

    second = _backfill(place, "ref")
    assert model_calls == {"distill": N_PERIODS, "train": N_PERIODS * len(SOME)}
    assert all(not (o.summary_metas or o.train_metas or o.evaluated) for o in second)
    metrics = _metrics(place, "ref")
    assert metrics.group_by(KEY).len()["len"].max() == 1
    assert metrics.equals(_subset(reference, SOME))  # backfill == continual, same seeds

    _backfill(place, "ref", start=1, strategies=["individual"], force=True)
    assert model_calls["train"] == N_PERIODS * len(SOME) + N_PERIODS - 1
    forced = _metrics(place, "ref")
    assert forced.group_by(KEY).len()["len"].max() == 1
    assert forced.equals(_subset(reference, SOME))


def test_killed_backfill_resumes_to_the_same_metrics(
    reference, synthetic_csv, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from models import strategies

    real_train = strategies.train_strategy
    calls: list[str] = []

    def dies_in_period_1(strategy, *args, **kwargs):
        calls.append(strategy.name)
        if len(calls) == len(SOME) + 2:  # period 1, after its first strategy
            raise Killed("killed mid-period")
        return real_train(strategy, *args, **kwargs)

    place = Place(tmp_path)
    _ingest(place, synthetic_csv, "ref")
    monkeypatch.setattr(strategies, "train_strategy", dies_in_period_1)
    with pytest.raises(Killed):
        _backfill(place, "ref")
    partial = _metrics(place, "ref")
    assert set(partial.select("trained_through", "evaluated_on").unique().rows()) == {(0, 0), (0, 1)}

    monkeypatch.setattr(strategies, "train_strategy", real_train)
    outcomes = _backfill(place, "ref")
    assert [len(o.train_metas) for o in outcomes] == [0, len(SOME) - 1, len(SOME)]
    assert _metrics(place, "ref").equals(_subset(reference, SOME))


def test_a_strategy_added_through_the_registry_alone_runs_through_the_flows(
    synthetic_csv, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A toy strategy (replays the previous period's rows only, cold start) needs one registry
    entry: the flows, the catalog export and the state files pick up what it declares."""
    import numpy as np

    from models import strategies

    class LastPeriod(strategies.Strategy):
        name = "last_period"
        needs = frozenset({strategies.Source.HISTORY})
        warm_start = False

        def replayed(self, data, previous):
            if data.history is None:
                return None
            return data.history[-min(data.history.shape[0], 10):]

    monkeypatch.setitem(strategies.STRATEGIES, "last_period", LastPeriod())
    place = Place(tmp_path)
    outcomes = _continual(place, synthetic_csv, "toy", strategies=["last_period", "individual"])
    assert [len(o.train_metas) for o in outcomes] == [2] * N_PERIODS
    metrics = _metrics(place, "toy")
    assert set(metrics["strategy"].unique()) == {"last_period", "individual"}
    from storage.arrays import read_json

    metas = [read_json(m) for o in outcomes for m in o.train_metas if "last_period" in m]
    assert [m["rows_replayed"] for m in metas] == [0, 10, 10]
    assert np.isfinite(metrics["value"].to_numpy()).all()


def test_models_record_device_and_replay(reference) -> None:
    """`auto` resolves to the CPU here, every meta says so, and the catalog keeps what each model replayed."""
    from storage.arrays import read_json

    metas = [read_json(m) for o in reference["outcomes"] for m in o.summary_metas + o.train_metas]
    assert {m["device"] for m in metas} == {"cpu"}
    trained = {(m["strategy"], m["period"]): m for m in metas if "strategy" in m}
    assert all(m["epochs"] >= 1 for m in trained.values())
    models = reference["models"]
    assert models.height == len(STRATEGIES) * N_PERIODS
    for row in models.iter_rows(named=True):
        meta = trained[(row["strategy"], row["period"])]
        assert (row["rows_replayed"], row["interactions_replayed"]) == (meta["rows_replayed"],
                                                                        meta["interactions_replayed"])
    assert models.filter(pl.col("strategy") == "individual")["interactions_replayed"].to_list() == [0] * N_PERIODS
    assert models.filter((pl.col("strategy") == "joint") & (pl.col("period") > 0))["interactions_replayed"].min() > 0


def test_gpu_pool_path_submits_every_summary_before_training(
    reference, synthetic_csv, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``gpu_pool`` set, the distillations of every period are submitted first, as one run;
    each period's strategies go in one train step, and the numbers equal the in-process run's. The deployment
    calls are replaced by the same flows run in-process (the e2e test runs them on real workers)."""
    from uuid import uuid4

    from flows import model_steps, period, steps

    calls: list[tuple] = []
    local = {period.DISTILL_DEPLOYMENT: model_steps.distill_periods, period.TRAIN_DEPLOYMENT: model_steps.train_period}

    def submit(deployment: str, **params) -> object:
        if "periods" in params:
            calls.append((deployment.split("/")[0], [rows.period for rows in params["periods"]]))
        else:
            calls.append((deployment.split("/")[0], params["period"], len(params["strategies"])))
        local[deployment](**params)
        return uuid4()

    for module in (period, steps):
        monkeypatch.setattr(module, "submit_step", submit)
        monkeypatch.setattr(module, "wait_for_step", lambda run_id, deployment: None)
    place = Place(tmp_path)
    _ingest(place, synthetic_csv, "ref")
    from flows.continual import continual_flow

    continual_flow(dataset="ref", start=0, end=N_PERIODS - 1, strategies=SOME, gpu_pool="gpu", **TINY, **place.paths)
    assert calls == ([("distill-periods", list(range(N_PERIODS)))]
                     + [("train-period", p, len(SOME)) for p in range(N_PERIODS)])
    assert _metrics(place, "ref").equals(_subset(reference, SOME))
