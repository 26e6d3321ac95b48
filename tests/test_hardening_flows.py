"""Regression tests of issue 13 that run flows: against the session's Prefect test harness, or
(case 11) as a real ``relay run`` process with its own temporary server."""

from __future__ import annotations

import contextlib
import gzip
import inspect
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from models.configs import DistillConfig, MVAEConfig, TrainingConfig
from relay.cli import app
from storage.catalog import connect
from storage.errors import IngestError
from storage.synthetic import write_synthetic_csv

TINY = {
    "distill": DistillConfig(n_fake_users=8, gamma=5, steps=2, patience=2, eval_every=1),
    "training": TrainingConfig(mvae=MVAEConfig(epochs=1, batch_size=64)),
    "seed": 0,
}
TINY_CLI = ["--distill-steps", "2", "--fake-users", "8", "--epochs", "1", "--strategies", "individual"]
T0 = 1_704_067_200  # 2024-01-01, a Monday


def paths(folder: Path) -> dict[str, str]:
    return {"db": str(folder / "relay.duckdb"), "storage_root": str(folder / "storage")}


@pytest.mark.usefixtures("prefect_harness")
def test_case02_flows_refuse_a_dataset_outside_the_root(synthetic_csv: Path, tmp_path: Path) -> None:
    from flows.continual import continual_flow
    from flows.ingest import ingest_flow
    from flows.model_steps import PeriodRows, distill_periods

    place = paths(tmp_path / "place")
    for run in (lambda: ingest_flow(dataset="..", data=[str(synthetic_csv)], policy="equal-count:3", db=place["db"]),
                lambda: continual_flow(dataset="..", data=[str(synthetic_csv)], policy="equal-count:3", **place),
                lambda: distill_periods(storage_root=place["storage_root"], dataset="..",
                                        periods=[PeriodRows(period=0, rows_sha="0" * 64)])):
        with pytest.raises(Exception, match="dataset name '..' is invalid"):
            run()
    assert not (tmp_path / "place").exists() and sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.usefixtures("prefect_harness")
def test_case03_remote_flows_take_no_free_paths(tmp_path: Path) -> None:
    from flows.model_steps import distill_periods, train_period

    for remote in (distill_periods, train_period):
        names = set(inspect.signature(remote.fn).parameters)
        assert not {n for n in names if "path" in n} - {"previous_path"}, names
    root = tmp_path / "root"
    elsewhere = tmp_path / "elsewhere.state"
    elsewhere.write_bytes(b"")
    inside = root / "d" / "models" / "ader" / "link.state"
    inside.parent.mkdir(parents=True)
    inside.symlink_to(elsewhere)                                 # inside by name, outside in fact
    for previous in (str(elsewhere), str(inside), str(root / "d" / ".." / "e" / "x.state"), "/etc/passwd"):
        with pytest.raises(ValueError, match="is not a state file under"):
            train_period(storage_root=str(root), dataset="d", period=1, strategies=[{
                "strategy": "ader", "inputs_sha": "0" * 64, "previous_path": previous, "previous_sha": "0" * 64}])


@pytest.mark.usefixtures("prefect_harness")
def test_case04_a_catalogue_under_100_items_records_metrics(tmp_path: Path) -> None:
    from flows.continual import continual_flow
    from tasks.catalog import metrics_frame

    data = write_synthetic_csv(tmp_path / "small.csv", n_users=40, n_items=60, n_interactions=1200, seed=3)
    place = paths(tmp_path)
    outcomes = continual_flow(dataset="small", data=[str(data)], policy="equal-count:2",
                              strategies=["individual"], **TINY, **place)
    assert [o.period for o in outcomes] == [0, 1]
    metrics = metrics_frame(place["db"], dataset="small")
    next_period = metrics.filter(pl.col("evaluated_on") == pl.col("trained_through") + 1)
    assert set(next_period["k"].unique()) >= {10, 100}             # 100 > the 60 items: every item ranked
    hr100 = next_period.filter((pl.col("metric") == "hr") & (pl.col("k") == 100))["value"]
    assert len(hr100) == 1 and hr100.min() == pytest.approx(100.0)  # all targets are within "the top 100"


@pytest.mark.usefixtures("prefect_harness")
def test_case12_a_folder_skips_unusable_files_and_reads_inter_and_compressed_files(tmp_path: Path) -> None:
    from flows.ingest import ingest_flow

    folder = tmp_path / "logs"
    folder.mkdir()
    rows = [(f"u{k}", f"i{k % 5}", 4, T0 + k * 3600) for k in range(30)]
    (folder / "a.csv").write_text("user,item,rating,ts\n" + "".join(f"{u},{i},{r},{t}\n" for u, i, r, t in rows[:10]))
    (folder / "b.inter").write_text("user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
                                    + "".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in rows[10:20]))
    (folder / "c.csv.gz").write_bytes(gzip.compress(
        ("user,item,rating,ts\n" + "".join(f"{u},{i},{r},{t}\n" for u, i, r, t in rows[20:])).encode()))
    (folder / "empty.csv").write_text("user,item,rating,ts\n")
    (folder / "notes.txt").write_text("not data")
    db = paths(tmp_path)["db"]
    finished = ingest_flow(dataset="f", data=[str(folder)], policy="equal-count:2", db=db)
    assert finished == [0, 1]
    with connect(db) as con:
        assert con.execute("SELECT count(*) FROM interactions").fetchall() == [(30,)]
        files = {Path(p).name for (p,) in con.execute("SELECT path FROM ingested_files").fetchall()}
    assert files == {"a.csv", "b.inter", "c.csv.gz"}
    with pytest.raises(IngestError, match="no data rows"):        # a file named itself must be usable
        ingest_flow(dataset="f", data=[str(folder / "empty.csv")], db=db)


@pytest.mark.usefixtures("prefect_harness")
def test_case13_run_without_policy_uses_the_calendar_policy_and_flow_errors_are_one_line(tmp_path: Path) -> None:
    data = write_synthetic_csv(tmp_path / "cal.csv", n_users=40, n_items=80, n_interactions=900, seed=5, days=17)
    where = ["--db", str(tmp_path / "relay.duckdb"), "--storage-root", str(tmp_path / "storage")]
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", str(data), "--dataset", "cal", *where[:2]]).exit_code == 0
    cut = runner.invoke(app, ["periods", "--dataset", "cal", "--policy", "calendar:week", *where[:2]])
    assert cut.exit_code == 0 and "finished" in cut.output
    run = runner.invoke(app, ["run", "--dataset", "cal", *TINY_CLI, *where])
    assert run.exit_code == 0, run.output
    assert "period 1:" in run.output and "plot written to" in run.output
    unfinished = runner.invoke(app, ["backfill", "--dataset", "cal", "--from", "0", "--to", "9", *TINY_CLI, *where])
    assert unfinished.exit_code == 2 and unfinished.stderr.count("\n") == 1, unfinished.output
    assert "are not finished" in unfinished.stderr and "Traceback" not in unfinished.output
    change = runner.invoke(app, ["run", "--dataset", "cal", "--policy", "equal-count:2", *TINY_CLI, *where])
    assert change.exit_code == 2 and change.stderr.count("\n") == 1 and "pass --reset" in change.stderr
    assert "--reset" in runner.invoke(app, ["run", "--help"]).output   # the advice can be followed


@pytest.mark.e2e
def test_case11_a_sigkilled_run_leaves_no_temporary_prefect_server(synthetic_csv: Path, tmp_path: Path) -> None:
    import psutil

    env = {key: value for key, value in os.environ.items() if key != "PREFECT_API_URL"}   # a temporary server
    env |= {"PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    relay = Path(sys.executable).with_name("relay")
    proc = subprocess.Popen(
        [str(relay), "run", "--dataset", "k", "--data", str(synthetic_csv), "--policy", "equal-count:3", *TINY_CLI,
         "--db", str(tmp_path / "k.duckdb"), "--storage-root", str(tmp_path / "storage")],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    servers: list[psutil.Process] = []
    try:
        while not (servers := [c for c in psutil.Process(proc.pid).children(recursive=True)
                               if "uvicorn" in " ".join(c.cmdline())]):
            assert proc.poll() is None and time.monotonic() < deadline, "no temporary server started"
            time.sleep(0.05)
        time.sleep(0.5)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        gone, alive = psutil.wait_procs(servers, timeout=15)
        assert not alive, f"the temporary server {[p.pid for p in alive]} outlived its killed relay run"
    finally:
        for server in servers:
            with contextlib.suppress(psutil.NoSuchProcess):
                server.kill()
        if proc.poll() is None:
            proc.kill()
