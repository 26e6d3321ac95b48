"""Orchestration overhead: the share of a deployment run's wall time not spent in model code.

Usage (from the repository root):
    .venv/bin/python bench/orchestration.py [--repo PATH] [--deployment continual|backfill]
        [--workers 1,2] [--periods 6] [--epochs N] [--distill-steps N] [--json OUT]

For each worker count it starts what the README's server section starts, as child processes of
this script, in a temporary folder (fresh Prefect home, catalog and storage root, so nothing is
cached): the Prefect server (``deployments/start-server.sh`` when the repository has it, else
``prefect server start``), ``relay deploy``, one ``cpu`` worker and N ``gpu`` workers
(``deployments/start-worker-*.sh``), with the ``gpu`` tag limit set to N (one model step per
GPU-pool worker). It ingests the bundled MovieLens file, cuts ``--periods`` equal-count periods,
runs the deployment through the server and waits for it.

Figures per run: the wall time from submitting the run to its end; model seconds (the
``seconds`` of every distill and train meta JSON the run wrote: time inside the model code);
evaluation seconds (the ``evaluate-model`` task runs, scoring models in the parent); the
overhead share ``1 − (model + evaluation) / wall`` when model steps run one at a time (N = 1);
the flow runs made; and whether the recorded metrics equal the first run's. ``--repo`` runs
another checkout of Relay (its code is put first on PYTHONPATH, this virtualenv's packages are
used), which is how the figures before a change are taken. Every process it starts is stopped by
its process group at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DATA = "data/ml-latest-small/ratings.csv"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stack:
    """Child processes in their own process groups, stopped (SIGTERM, then SIGKILL) on close."""

    def __init__(self, folder: Path, env: dict[str, str], repo: Path) -> None:
        self.folder, self.env, self.repo, self.procs = folder, env, repo, []

    def start(self, name: str, cmd: list[str], **env: str) -> subprocess.Popen:
        log = (self.folder / f"{name}.log").open("wb")
        proc = subprocess.Popen(cmd, env=self.env | env, cwd=self.repo, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.procs.append(proc)
        return proc

    def run(self, *args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "relay.cli", *args], env=self.env, cwd=self.repo,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
        if done.returncode:
            raise RuntimeError(f"relay {' '.join(args)} failed:\n{done.stdout[-3000:]}")
        return done.stdout

    def close(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _wait_healthy(api: str, proc: subprocess.Popen, timeout: float = 180) -> None:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    deadline = time.monotonic() + timeout
    with temporary_settings(updates={PREFECT_API_URL: api}), get_client(sync_client=True) as client:
        while client.api_healthcheck() is not None:  # the error, until the API answers
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Prefect server at {api} did not start")
            time.sleep(0.5)


def _server_command(repo: Path, port: int) -> list[str]:
    script = repo / "deployments" / "start-server.sh"
    args = ["--host", "127.0.0.1", "--port", str(port)]
    return [str(script), *args] if script.exists() else [str(BIN / "prefect"), "server", "start", *args]


def _every(read, **filters) -> list:
    """Every object a paged client call returns (the API serves at most 200 a call)."""
    out: list = []
    while page := read(**filters, limit=200, offset=len(out)):
        out += page
    return out


def _metas(storage: Path) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {"distill": [], "train": []}
    for path in storage.rglob("*.json"):
        meta = json.loads(path.read_text())
        if "seconds" in meta:
            found["train" if "strategy" in meta else "distill"].append(meta)
    return found


def _metrics(db: Path) -> list[tuple]:
    from storage import catalog, results

    con = catalog.connect(db)
    try:
        frame = results.read_metrics(con, dataset="mls").drop("run_id")
    finally:
        con.close()
    return sorted(frame.rows())


def run_once(args: argparse.Namespace, workers: int, folder: Path) -> dict:
    """One configuration: start the stack, run the deployment, gather the figures."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterName
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = os.environ | {
        "PREFECT_HOME": str(folder / "prefect-home"), "PREFECT_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false",
        "PYTHONPATH": str(args.repo), "PREFECT": str(BIN / "prefect"),
    }
    db, storage = folder / "relay.duckdb", folder / "storage"
    with ExitStack() as stack:
        procs = Stack(folder, env, args.repo)
        stack.callback(procs.close)
        server = procs.start("server", _server_command(args.repo, port))
        _wait_healthy(api, server)
        procs.run("ingest", str(args.repo / DATA), "--dataset", "mls", "--db", str(db))
        procs.run("periods", "--dataset", "mls", "--policy", f"equal-count:{args.periods}", "--db", str(db))
        procs.run("deploy")
        with temporary_settings(updates={PREFECT_API_URL: api}), get_client(sync_client=True) as client:
            client.create_concurrency_limit(tag="gpu", concurrency_limit=workers)
            scripts = args.repo / "deployments"
            procs.start("worker-cpu", [str(scripts / "start-worker-cpu.sh")], WORKER_NAME="bench-cpu")
            for i in range(workers):
                procs.start(f"worker-gpu-{i}", [str(scripts / "start-worker-gpu.sh")], WORKER_NAME=f"bench-gpu-{i}")
            params = {"dataset": "mls", "data": [], "db": str(db), "storage_root": str(storage),
                      **_budgets(args)}
            if args.deployment == "backfill":
                params |= {"start": 0, "end": args.periods - 1}
            submitted = time.time()
            parent = run_deployment(f"continual/{args.deployment}", parameters=params, timeout=0)
            while not (parent := client.read_flow_run(parent.id)).state.is_final():
                time.sleep(1)
            wall = time.time() - submitted
            if not parent.state.is_completed():
                raise RuntimeError(f"the {args.deployment} run ended {parent.state.name}; logs in {folder}")
            evaluations = _every(client.read_task_runs,
                                 task_run_filter=TaskRunFilter(name=TaskRunFilterName(like_="evaluate-model")))
            gpu_runs = [r for r in _every(client.read_flow_runs) if r.work_pool_name == "gpu"]
    metas = _metas(storage)
    server_log = (folder / "server.log").read_text(errors="replace")
    distill = sum(m["seconds"] for m in metas["distill"])
    train = sum(m["seconds"] for m in metas["train"])
    evaluation = sum(r.total_run_time.total_seconds() for r in evaluations)
    return {
        "workers": workers, "wall_s": wall, "distill_s": distill, "train_s": train, "evaluate_s": evaluation,
        "overhead_share": max(0.0, 1 - (distill + train + evaluation) / wall),
        "gpu_runs": len(gpu_runs), "summaries": len(metas["distill"]), "models": len(metas["train"]),
        "devices": sorted({m.get("device", "?") for m in metas["distill"] + metas["train"]}),
        "lock_errors": server_log.count("(sqlite3.OperationalError) database is locked"),
        "load_avg_1min": os.getloadavg()[0], "metrics": _metrics(db),
    }


def _budgets(args: argparse.Namespace) -> dict:
    out: dict = {}
    if args.epochs:
        out["training"] = {"mvae": {"epochs": args.epochs}}
    if args.distill_steps:
        out["distill"] = {"steps": args.distill_steps}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", type=Path, default=REPO, help="Relay checkout to run (default: this one)")
    parser.add_argument("--deployment", choices=("continual", "backfill"), default="continual")
    parser.add_argument("--workers", default="1", help="comma-separated GPU-pool worker counts, e.g. 1,2")
    parser.add_argument("--periods", type=int, default=6, help="equal-count periods of the bundled data")
    parser.add_argument("--epochs", type=int, default=0, help="MVAE epochs per period (0: the default)")
    parser.add_argument("--distill-steps", type=int, default=0, help="Distill-CF steps (0: the default)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    args.repo = args.repo.resolve()
    results = []
    for workers in [int(w) for w in args.workers.split(",")]:
        folder = Path(tempfile.mkdtemp(prefix=f"relay-orchestration-{workers}w-"))
        results.append(run_once(args, workers, folder))
        print(f"done with {workers} worker(s); logs in {folder}", flush=True)
    reference = results[0]["metrics"]
    print(f"{'workers':>7} {'wall s':>8} {'distill s':>9} {'train s':>8} {'eval s':>7} {'overhead':>8} "
          f"{'gpu runs':>8} {'speed-up':>8} {'same metrics':>12} {'lock errors':>11} {'load':>5}")
    for r in results:
        r["same_metrics"] = r["metrics"] == reference
        r["speed_up"] = results[0]["wall_s"] / r["wall_s"]
        print(f"{r['workers']:>7} {r['wall_s']:>8.1f} {r['distill_s']:>9.1f} {r['train_s']:>8.1f} "
              f"{r['evaluate_s']:>7.1f} {100 * r['overhead_share']:>7.1f}% {r['gpu_runs']:>8} "
              f"{r['speed_up']:>7.2f}x {str(r['same_metrics']):>12} {r['lock_errors']:>11} {r['load_avg_1min']:>5.1f}")
    if args.json:
        args.json.write_text(json.dumps([{k: v for k, v in r.items() if k != "metrics"} | {
            "n_metrics": len(r["metrics"])} for r in results], indent=2))


if __name__ == "__main__":
    main()
