"""bench/continual.py: runs saved by several invocations merge into one comparison (no training)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from helpers import BENCH, load_bench

continual = load_bench(BENCH / "continual.py")

N_PERIODS = 3


def _record(level: float, seconds: float) -> dict:
    """One arm's record over N_PERIODS evaluated periods, every metric at ``level`` + period."""
    scores = [level + t for t in range(N_PERIODS)]
    record = {m: list(scores) for m in (*continual.METRICS, "val_ndcg100")}
    return record | {"replayed_rows": [0] * N_PERIODS, "replayed_interactions": [10] * N_PERIODS,
                     "replayed_mass": [10.0] * N_PERIODS, "training_interactions": [100] * N_PERIODS,
                     "evaluated_users": [5] * N_PERIODS, "skipped_users": [1] * N_PERIODS, "seconds": seconds}


def _run(seed: int, arms: dict[str, float], *, distilled: bool) -> dict:
    return {"seed": seed, "distill_seconds": 3.0 if distilled else 0.0, "seconds": 0.0,
            "summary_share": [0.1] * N_PERIODS if distilled else [],
            "summary_rows": [2] * N_PERIODS if distilled else [],
            "arms": {label: _record(level + seed, 10.0) for label, level in arms.items()}}


def test_a_seeds_arms_from_several_invocations_merge_into_one_run() -> None:
    parts = [[_run(0, {"individual": 1.0, "distill_cf": 2.0}, distilled=True)],
             [_run(1, {"individual": 1.0, "distill_cf": 2.0}, distilled=True)],
             [_run(0, {"joint": 4.0}, distilled=False)]]
    runs = continual.merge_runs(parts)
    assert [run["seed"] for run in runs] == [0, 1]
    assert set(runs[0]["arms"]) == {"individual", "distill_cf", "joint"}
    assert set(runs[1]["arms"]) == {"individual", "distill_cf"}
    assert runs[0]["summary_share"] == [0.1] * N_PERIODS  # taken from the invocation that distilled
    assert runs[0]["seconds"] == 3.0 + 3 * 10.0


def test_an_arm_run_twice_for_a_seed_must_agree() -> None:
    same = [[_run(0, {"ader": 2.0}, distilled=True)], [_run(0, {"ader": 2.0}, distilled=True)]]
    assert continual.merge_runs(same)[0]["arms"]["ader"]["ndcg@10"] == [2.0, 3.0, 4.0]
    other = [[_run(0, {"ader": 2.0}, distilled=True)], [_run(0, {"ader": 2.5}, distilled=True)]]
    with pytest.raises(ValueError, match="seed 0, arm 'ader'"):
        continual.merge_runs(other)


def test_each_arm_and_pair_uses_the_seeds_that_ran_it() -> None:
    runs = continual.merge_runs([[_run(s, {"distill_cf": 2.0, "ader": 1.0}, distilled=True)] for s in range(3)]
                                + [[_run(0, {"joint": 5.0}, distilled=False)]])
    report = continual.summarise(runs, ["joint", "distill_cf", "ader"])
    assert report["joint"]["seeds"] == [0]
    assert report["distill_cf"]["seeds"] == [0, 1, 2]
    assert report["distill_cf"]["mean"]["ndcg@10"] == pytest.approx(2.0 + 1.0 + 1.0)  # periods +1, seeds +1 on average
    assert report["paired"]["distill_cf-ader"]["seeds"] == [0, 1, 2]
    assert report["paired"]["distill_cf-ader"]["mean"] == pytest.approx(1.0)
    assert report["paired"]["distill_cf-joint"]["seeds"] == [0]
    assert report["paired"]["distill_cf-joint"]["mean"] == pytest.approx(-3.0)
    assert np.isfinite(report["distill_cf"]["share_of_joint_interactions"])


def _saved(path: Path, payload: dict) -> Path:
    settings = {"data": "log.csv", "mu": [2, 4], "budget": "interactions", "distill": {}, "training": {}}
    path.write_text(json.dumps(settings | payload))
    return path


def _summarised_sweep(runs: dict[str, list[dict]]) -> dict:
    return continual.summarise_sweep({mu: continual.sweep_point(r) for mu, r in runs.items()}, runs)


def _sweep_point(seed: int, level: float, share: float) -> list[dict]:
    return [_run(seed, {"distill_cf": level, "ader": level - 1.0}, distilled=True) | {"summary_share": [share] * 3}]


def test_sweeps_of_several_invocations_merge_mu_by_mu(tmp_path: Path) -> None:
    parts = [_saved(tmp_path / f"sweep-s{seed}.json", {"seeds": [seed], "sweep": _summarised_sweep(
                 {"2": _sweep_point(seed, 1.0, share=0.05), "4": _sweep_point(seed, 3.0, share=0.2)})})
             for seed in (0, 1)]
    out = tmp_path / "merged.json"
    continual.report_merged(parts, json_out=out, plot=None)
    merged = json.loads(out.read_text())
    assert merged["seeds"] == [0, 1]
    for mu in ("2", "4"):
        point = merged["sweep"]["by_mu"][mu]
        assert point["distill_cf"]["seeds"] == [0, 1]
        assert point["paired"]["distill_cf-ader"]["mean"] == pytest.approx(1.0)
    assert merged["sweep"]["by_mu"]["4"]["distill_cf"]["mean"]["ndcg@10"] == pytest.approx(3.0 + 1.0 + 0.5)
    assert merged["sweep"]["chosen_mu"] == 2  # μ = 4 validates better, but its summaries hold 20% of a period


def test_a_sweep_and_a_comparison_do_not_merge(tmp_path: Path) -> None:
    sweep = _saved(tmp_path / "sweep.json", {"seeds": [0], "sweep": _summarised_sweep(
        {"2": [_run(0, {"distill_cf": 1.0, "ader": 1.0}, distilled=True)]})})
    comparison = _saved(tmp_path / "runs.json", {"seeds": [0], "runs": [_run(0, {"ader": 1.0}, distilled=True)]})
    with pytest.raises(SystemExit, match="not both sweeps or both comparisons"):
        continual.report_merged([sweep, comparison], json_out=None, plot=None)
