"""The data-centric experiments: noise, budgets, retention, DATA-GENIE, static splits, the flows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from models import datagenie, experiments
from models.configs import ExperimentConfig, MVAEConfig, ProxyConfig, SamplerConfig
from models.recommenders import RECOMMENDERS, get_recommender
from models.samplers import Budget, n_users
from storage.static_splits import dataset_label, read_interactions, read_static_split, split_per_user
from storage.synthetic import synthetic_interactions, write_synthetic_csv

TINY = ExperimentConfig(n_val_users=None, sampling=SamplerConfig(proxy=ProxyConfig(factors=4, epochs=2, batch_size=256)))


@pytest.fixture(scope="module")
def split():
    frame = synthetic_interactions(n_users=70, n_items=90, n_interactions=2500, seed=5)
    return split_per_user(frame["user_id"].to_numpy(), frame["item_id"].to_numpy(), seed=0)


def test_flip_items_flips_exactly_the_share_of_the_catalogue_per_user() -> None:
    x = sp.random(30, 40, density=0.2, random_state=0, format="csr", data_rvs=np.ones).astype(np.float32)
    noisy = experiments.flip_items(x, share=0.1, seed=3)
    changed = np.abs(noisy.toarray() - x.toarray())
    np.testing.assert_array_equal(changed.sum(axis=1), np.full(30, 4))
    assert set(np.unique(noisy.toarray())) <= {0.0, 1.0}
    assert (noisy != experiments.flip_items(x, share=0.1, seed=3)).nnz == 0
    assert (noisy != experiments.flip_items(x, share=0.1, seed=4)).nnz > 0
    assert (experiments.flip_items(x, share=0.0, seed=3) != x).nnz == 0
    with pytest.raises(ValueError, match="share"):
        experiments.flip_items(x, share=1.5, seed=0)


def test_budget_labels() -> None:
    x = sp.csr_matrix(np.eye(40, dtype=np.float32))
    assert experiments.user_budget("all", x) == Budget()
    assert experiments.user_budget("7", x) == Budget(users=7)
    assert experiments.user_budget("10%", x) == Budget(users=4)
    assert experiments.budget_share("25%", x) == pytest.approx(0.25)
    assert experiments.budget_share("500", x) == 1.0
    for bad in ("0", "-3", "x", "150%", "0%", ""):
        with pytest.raises(ValueError, match="budget must be"):
            experiments.check_budget(bad)


def _cell(hr: float, psp: float, ndcg: float) -> dict[str, float]:
    return {"hr@10": hr, "psp@10": psp, "ndcg@10": ndcg}


def test_retention_is_kendalls_tau_of_the_model_orders() -> None:
    full = {"a": _cell(3, 3, 3), "b": _cell(2, 2, 2), "c": _cell(1, 1, 1)}
    sample = {"a": _cell(30, 1, 30), "b": _cell(20, 2, 20), "c": _cell(10, 3, 10)}  # PSP order reversed
    tied = {m: _cell(5, 5, 5) for m in full}
    grid = {m: {"s": {"all": full[m], "10": sample[m], "20": tied[m]}} for m in full}
    out = experiments.retention(grid)
    assert out["s"]["10"]["tau_hr@10"] == pytest.approx(1.0)
    assert out["s"]["10"]["tau_psp@10"] == pytest.approx(-1.0)
    assert out["s"]["10"]["tau"] == pytest.approx(1 / 3)
    assert out["s"]["20"]["tau"] == 0.0  # no order at all: counted as 0
    with pytest.raises(ValueError, match="at least two models"):
        experiments.retention({"a": grid["a"]})


def test_noise_drops_are_percent_changes_against_the_clean_full_data() -> None:
    grids = {"5%": {"ease": {"s": {"all": _cell(8, 2, 4), "100": _cell(5, 1, 2)}}}}
    drops = experiments.noise_drops(grids, {"ease": _cell(10, 2, 5)})
    assert drops["5%"]["ease"]["s"]["all"] == pytest.approx({"hr@10": -20.0, "psp@10": 0.0, "ndcg@10": -20.0})
    assert drops["5%"]["ease"]["s"]["100"]["psp@10"] == pytest.approx(-50.0)


def test_run_grid_fills_model_sampler_budget(split) -> None:
    grid = experiments.run_grid(split, samplers=["user_rns", "head_user", "interaction_rns"],
                                budgets=["8", "25%", "10000"], models=["popularity", "ease"], config=TINY, seed=0)
    assert list(grid) == ["popularity", "ease"]
    for model, per_sampler in grid.items():
        assert list(per_sampler) == ["user_rns", "head_user", "interaction_rns"]
        for sampler, cells in per_sampler.items():
            assert list(cells) == ["8", "25%", "10000", "all"]
            assert cells["10000"] == cells["all"] == grid[model]["user_rns"]["all"]  # a covering budget: full data
            assert cells["all"]["users"] == n_users(split.train)
            assert 0 <= cells["8"]["hr@10"] <= 100 and cells["8"]["budget_users"] == 8
        assert per_sampler["user_rns"]["8"]["users"] == 8
        assert per_sampler["interaction_rns"]["8"]["interactions"] == round(split.train.nnz * 8 / n_users(split.train))
    again = experiments.run_grid(split, samplers=["user_rns"], budgets=["8"], models=["ease"], config=TINY, seed=0)
    assert again["ease"]["user_rns"]["8"]["ndcg@10"] == grid["ease"]["user_rns"]["8"]["ndcg@10"]


@pytest.mark.parametrize("name", list(RECOMMENDERS))
def test_every_recommender_fits_and_scores(split, name: str) -> None:
    config = ExperimentConfig(n_val_users=20, mvae=MVAEConfig(epochs=2, batch_size=32, device="cpu"))
    fitted = get_recommender(name).fit(split.train[:40], validation=(split.val_context, split.val), seed=0,
                                       config=config)
    scores = fitted.score(split.test_context[:7])
    assert scores.shape == (7, split.train.shape[1]) and np.isfinite(scores).all()
    values = experiments.test_metrics(fitted.score, split, item_counts=np.ones(split.train.shape[1]))
    assert 0 <= values["hr@10"] <= 100
    with pytest.raises(ValueError, match="model must be one of"):
        get_recommender("bpr")


def test_noise_reaches_the_samples_but_not_the_test_contexts(split) -> None:
    clean = experiments.run_full(split, models=["popularity"], config=TINY, seed=0)
    noisy = experiments.run_full(split, models=["popularity"], config=TINY, seed=0, noise=0.3)
    assert noisy["popularity"]["interactions"] > clean["popularity"]["interactions"]
    assert noisy["popularity"]["hr@10"] != clean["popularity"]["hr@10"]


def test_gini_and_statistics() -> None:
    assert datagenie.gini(np.ones(5)) == pytest.approx(0.0)
    assert datagenie.gini(np.array([0, 0, 0, 10])) == pytest.approx(0.75)
    stats = datagenie.dataset_statistics(sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 0], [0, 0, 0]], np.float32)))
    assert stats["log_users"] == pytest.approx(np.log10(2)) and stats["log_items"] == pytest.approx(np.log10(2))
    assert stats["log_density"] == pytest.approx(np.log10(3 / 4))
    assert list(stats) == list(datagenie.STATISTICS)


def test_datagenie_learns_which_sampler_wins_where() -> None:
    # sampler "dense_lover" retains best on dense data sets, "user_rns" on sparse ones
    observations = []
    for i, log_density in enumerate(np.linspace(-3, -0.5, 8)):
        stats = dict.fromkeys(datagenie.STATISTICS, 0.0) | {"log_density": float(log_density), "log_users": 3.0 + i % 2}
        for budget, share in (("10%", 0.1), ("50%", 0.5)):
            good = log_density > -1.75
            observations += [
                datagenie.Observation(f"d{i}", "dense_lover", budget, share, 0.8 if good else 0.2, stats),
                datagenie.Observation(f"d{i}", "user_rns", budget, share, 0.5, stats)]
    result = datagenie.leave_one_dataset_out(observations)
    assert len(result["picks"]) == 16
    assert result["accuracy"] == 1.0 and result["baseline_accuracy"] == 0.5
    assert result["mean_tau_picked"] == pytest.approx(result["mean_tau_best"])
    with pytest.raises(ValueError, match="at least 3 data sets"):
        datagenie.leave_one_dataset_out([o for o in observations if o.dataset in ("d0", "d1")])


def test_split_per_user_is_the_paper_protocol() -> None:
    users = np.repeat(np.arange(5), [1, 2, 3, 10, 25])
    items = np.concatenate([np.arange(n) for n in (1, 2, 3, 10, 25)])
    split = split_per_user(np.r_[users, users[-3:]], np.r_[items, items[-3:]], seed=1)  # duplicates merge
    assert list(split.user_ids) == [2, 3, 4]  # fewer than 3 interactions: dropped
    np.testing.assert_array_equal(np.diff(split.test.indptr), [1, 1, 3])
    np.testing.assert_array_equal(np.diff(split.val.indptr), [0, 1, 3])
    np.testing.assert_array_equal(np.diff(split.train.indptr), [2, 8, 19])
    whole = split.train + split.val + split.test
    assert whole.max() == 1 and whole.nnz == 38
    again = split_per_user(np.r_[users, users[-3:]], np.r_[items, items[-3:]], seed=1)
    assert (again.test != split.test).nnz == 0


def test_reading_logs_and_labels(tmp_path: Path) -> None:
    csv = write_synthetic_csv(tmp_path / "toy" / "ratings.csv", n_users=20, n_items=30, n_interactions=300, seed=0)
    users, items = read_interactions(csv)
    assert len(users) == len(items) == 300
    inter = tmp_path / "toy.inter"
    inter.write_text("user_id:token\titem_id:token\trating:float\n1\t5\t3\n1\t6\t4\n1\t7\t4\n2\t5\t1\n")
    split = read_static_split(inter, seed=0)
    assert split.train.shape == (1, 3) and split.test.nnz == 1
    assert dataset_label(csv) == "toy-ratings" and dataset_label(Path("ml-100k/ml-100k.inter")) == "ml-100k"
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="no user column"):
        read_interactions(bad)


@pytest.mark.usefixtures("prefect_harness")
def test_experiment_flows_publish_plots_and_tables(tmp_path: Path) -> None:
    import typer
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from typer.testing import CliRunner

    from flows.experiments import noise_flow, retention_flow, sample_efficiency_flow
    from relay.commands.experiment import register

    files = [write_synthetic_csv(tmp_path / f"toy{i}" / "log.csv", n_users=40, n_items=50, n_interactions=900 + 300 * i,
                                 zipf_a=0.6 + 0.4 * i, seed=i) for i in range(3)]
    grid = sample_efficiency_flow(data=str(files[0]), budgets=["5", "all"], samplers=["user_rns", "svp_cf"],
                                  models=["popularity", "ease"], config=TINY)
    assert grid["ease"]["svp_cf"]["5"]["users"] == 5
    noise = noise_flow(data=str(files[0]), noise_levels=[0.0, 5.0], budgets=["5"], samplers=["head_user"],
                       models=["popularity"], config=TINY)
    assert noise["changes"]["0%"]["popularity"]["head_user"]["all"]["hr@10"] == pytest.approx(0.0)
    assert noise["grids"]["5%"]["popularity"]["head_user"]["all"]["interactions"] > grid["ease"]["svp_cf"]["all"][
        "interactions"]
    retained = retention_flow(data=[str(f) for f in files], budgets=["25%", "50%"],
                              samplers=["user_rns", "head_user"], models=["popularity", "ease", "infinite_ae"],
                              config=TINY, name="toys")
    assert set(retained["retention"]) == {"toy0-log", "toy1-log", "toy2-log"}
    assert len(retained["datagenie"]["picks"]) == 6
    with get_client(sync_client=True) as client:
        keys = {"toy0-log-sample-efficiency", "toy0-log-sample-efficiency-table", "toy0-log-noise",
                "toys-retention", "toys-datagenie"}
        found = {a.key for a in client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=list(keys))))}
        assert found == keys
        plot = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["toy0-log-noise"])))
        assert "data:image/png;base64," in plot[0].data

    app = typer.Typer()
    register(app)
    out = tmp_path / "cli.json"
    result = CliRunner().invoke(app, ["experiment", "sample-efficiency", "--data", str(files[1]), "--budgets", "5,all",
                                      "--samplers", "user_rns", "--models", "popularity", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["popularity"]["user_rns"]["5"]["users"] == 5
