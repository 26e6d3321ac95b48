"""A backfill SIGKILLed in the middle of a period resumes to the same metrics.

Unlike the in-process crash of ``test_flows``, this kills the whole process group (the flow and
its temporary Prefect server) with SIGKILL after the first model of period 1 is written, so
nothing gets to clean up: the DuckDB catalog must recover from its WAL and the re-run must finish
the period's remaining work and produce exactly the metrics of an uninterrupted run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

pytestmark = pytest.mark.e2e

DRIVER = """
import sys
from flows.continual import continual_flow
from flows.ingest import ingest_flow
from models.configs import DistillConfig, MVAEConfig, TrainingConfig

csv, folder = sys.argv[1:]
paths = {"db": f"{folder}/relay.duckdb", "storage_root": f"{folder}/storage"}
ingest_flow(dataset="syn", data=[csv], policy="equal-count:3", db=paths["db"])
continual_flow(dataset="syn", start=0, end=2, strategies=["individual", "ader"],
               distill=DistillConfig(n_fake_users=8, gamma=5, steps=2, patience=2, eval_every=1),
               training=TrainingConfig(mvae=MVAEConfig(epochs=1, batch_size=64)),
               seed=0, **paths)
"""
KEY = ["strategy", "trained_through", "evaluated_on", "metric", "k"]


def _start(folder: Path, csv: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "PREFECT_HOME": str(folder / "prefect"),
        "PREFECT_API_URL": "",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    return subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(csv), str(folder)], env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=(folder / "log.txt").open("ab"),
    )


def _finish(proc: subprocess.Popen, folder: Path) -> None:
    try:
        assert proc.wait(timeout=300) == 0, (folder / "log.txt").read_text()[-3000:]
    finally:
        _kill_group(proc)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _metrics(folder: Path) -> pl.DataFrame:
    from storage.catalog import connect
    from storage.results import read_metrics

    con = connect(folder / "relay.duckdb")
    try:
        return read_metrics(con, dataset="syn").drop("run_id").sort(KEY)
    finally:
        con.close()


def test_sigkilled_backfill_resumes_to_the_same_metrics(synthetic_csv: Path, tmp_path: Path) -> None:
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    for folder in (reference, killed):
        folder.mkdir()
    _finish(_start(reference, synthetic_csv), reference)

    proc = _start(killed, synthetic_csv)
    models = killed / "storage" / "syn" / "models"
    deadline = time.monotonic() + 300
    try:
        while not list(models.glob("*/period-0001-*.state*")):
            assert proc.poll() is None, "the backfill ended before period 1 was under way"
            assert time.monotonic() < deadline, "period 1 never started"
            time.sleep(0.05)
    finally:
        _kill_group(proc)
    partial = _metrics(killed)
    assert set(partial["evaluated_on"].unique()) <= {0, 1}  # M_0 on period 1, and on period 0 (forgetting)

    _finish(_start(killed, synthetic_csv), killed)
    resumed = _metrics(killed)
    assert resumed.group_by(KEY[:3] + ["metric", "k"]).len()["len"].max() == 1
    assert resumed.equals(_metrics(reference))
