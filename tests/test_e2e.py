"""End to end: a real ``prefect server``, one process worker per pool, ``relay deploy`` from
deployments/prefect.yaml, and the ``continual`` deployment run on synthetic data.

Asserts through the Prefect client that the parent and child runs completed, that every model
step ran on the ``gpu`` pool (a partial parameter override keeps the deployment's ``gpu_pool``),
that the distillations of all periods were submitted before the first training, one
``train-period`` run per period trained every strategy, and that the artifacts exist. Every process this
test starts is stopped by its PID (its process group) at the end, also on failure.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TINY = {
    "distill": {"n_fake_users": 8, "gamma": 5, "steps": 3, "patience": 3, "eval_every": 1},
    "training": {"mvae": {"epochs": 2, "batch_size": 64}},
    "seed": 0,
}
STRATEGIES = ["distill_cf", "ader"]  # ADER's budget needs the size of the period's own summary


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(cmd: list[str], *, env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start ``cmd`` in its own process group (so its children stop with it), output to ``log``."""
    handle = log.open("wb")
    return subprocess.Popen(
        cmd, env=env, cwd=REPO, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
    )


def _stop(proc: subprocess.Popen) -> None:
    """Stop a started process and its children by PID: SIGTERM to its group, then SIGKILL."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=15)


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"prefect server exited early:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"prefect server not healthy after {timeout} s:\n{log.read_text()[-3000:]}")


def test_continual_deployment_end_to_end(tmp_path: Path, synthetic_csv: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterKey,
        DeploymentFilter,
        DeploymentFilterName,
        FlowRunFilter,
        FlowRunFilterParentFlowRunId,
    )
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = os.environ | {
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_WORKER_PREFETCH_SECONDS": "1",
    }
    started = time.monotonic()
    with ExitStack() as stack:
        server = _start(
            [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env, log=tmp_path / "server.log",
        )
        stack.callback(_stop, server)
        _wait_healthy(api, server, tmp_path / "server.log")
        phases = {"server": time.monotonic() - started}
        deploy = subprocess.run(
            [str(BIN / "relay"), "deploy"], env=env, cwd=REPO, timeout=180,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        assert deploy.returncode == 0, deploy.stdout[-3000:]
        phases["deploy"] = time.monotonic() - started
        workers = {}
        for pool in ("cpu", "gpu"):
            workers[pool] = _start(
                [str(REPO / "deployments" / f"start-worker-{pool}.sh")],
                env=env | {"PREFECT": str(BIN / "prefect"), "WORKER_NAME": f"e2e-{pool}"},
                log=tmp_path / f"worker-{pool}.log",
            )
            stack.callback(_stop, workers[pool])

        # Override some parameters: the deployment keeps its own for the rest (gpu_pool: gpu).
        params = {
            "dataset": "synth",
            "data": [str(synthetic_csv)],
            "policy": "equal-count:2",
            "strategies": STRATEGIES,
            "db": str(tmp_path / "relay.duckdb"),
            "storage_root": str(tmp_path / "storage"),
            **TINY,
        }
        with temporary_settings(updates={PREFECT_API_URL: api}):
            parent = run_deployment(
                "continual/continual", parameters=params, timeout=0, as_subflow=False,
            )
            with get_client(sync_client=True) as client:
                parent = _wait_final(client, parent.id, workers, tmp_path)
                phases["run"] = time.monotonic() - started
                assert parent.state.is_completed(), f"{parent.state}\n{_logs(tmp_path)}"
                assert parent.work_pool_name == "cpu"
                runs = _descendants(client, parent.id, FlowRunFilter, FlowRunFilterParentFlowRunId)
                distill = _runs_of(client, runs, "distill-periods", DeploymentFilter,
                                   DeploymentFilterName)
                train = _runs_of(client, runs, "train-period", DeploymentFilter,
                                 DeploymentFilterName)
                assert len(distill) == 1 and len(train) == 2  # one distill run, one train-period run per period
                assert max(r.created for r in distill) < min(r.created for r in train)  # summaries first
                assert all(len(r.parameters["strategies"]) == len(STRATEGIES) for r in train)
                for run in distill + train:
                    assert run.work_pool_name == "gpu"
                    assert run.state.is_completed(), run.state
                keys = {"synth-metrics", "synth-ndcg-10-plot", "synth-run-summary",
                        "synth-distill-progress"}
                found = client.read_artifacts(
                    artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=sorted(keys)))
                )
                assert {a.key for a in found} == keys
    print(f"e2e took {time.monotonic() - started:.1f} s; cumulative phases {phases}")


def _logs(folder: Path) -> str:
    return "".join(
        f"--- {p} worker ---\n" + (folder / f"worker-{p}.log").read_text()[-3000:]
        for p in ("cpu", "gpu")
    )


def _wait_final(client, run_id, workers: dict, folder: Path, timeout: float = 240):
    """Poll the run until it is final; fail early (with the logs) if a worker died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = client.read_flow_run(run_id)
        if run.state and run.state.is_final():
            return run
        dead = [pool for pool, proc in workers.items() if proc.poll() is not None]
        assert not dead, f"worker(s) {dead} exited\n{_logs(folder)}"
        time.sleep(1)
    raise TimeoutError(f"flow run {run_id} not finished after {timeout} s\n{_logs(folder)}")


def _descendants(client, root_id, FlowRunFilter, ParentFilter) -> list:
    """Every flow run below ``root_id`` (children of children: period subflows, deployments)."""
    out, frontier = [], [root_id]
    while frontier:
        task_children = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(parent_flow_run_id=ParentFilter(any_=frontier))
        )
        out += task_children
        frontier = [r.id for r in task_children]
    return out


def _runs_of(client, runs, deployment_name, DeploymentFilter, NameFilter) -> list:
    deployments = client.read_deployments(
        deployment_filter=DeploymentFilter(name=NameFilter(any_=[deployment_name]))
    )
    ids = {d.id for d in deployments}
    return [r for r in runs if r.deployment_id in ids]
