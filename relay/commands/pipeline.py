"""Pipeline commands: ``relay run`` (alias ``relay backfill``), ``relay report``, ``relay deploy``.

``run`` calls the continual flow in this process. With no ``PREFECT_API_URL`` configured,
Prefect starts a temporary local server for the run (ephemeral mode), so nothing needs to be set
up first; with a server configured, the runs show up in its UI. Option defaults are the model
configurations' own defaults; ``RELAY_DB`` and ``RELAY_STORAGE_ROOT`` set the two paths.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from models.configs import Device, DistillConfig, TrainingConfig
from relay.options import DatasetOption as DatasetOpt
from relay.options import DbOption as DbOpt
from relay.options import RootOption as RootOpt
from storage.layout import DEFAULT_DB, DEFAULT_STORAGE_ROOT

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient

REPO_ROOT = Path(__file__).resolve().parents[2]
PREFECT_FILE = REPO_ROOT / "deployments" / "prefect.yaml"
POOLS = ("cpu", "gpu")
DISTILL, TRAINING = DistillConfig(), TrainingConfig()

StrategiesOpt = Annotated[
    str, typer.Option("--strategies", help="Comma-separated strategies (individual, joint, distill_cf, ader, …); "
                                           "empty: every registered one")
]
StepsOpt = Annotated[int, typer.Option("--distill-steps", min=1, help="Distill-CF steps per period (max; early-stopped)")]
FakeOpt = Annotated[
    int, typer.Option("--fake-users", min=1, help="μ: most summary rows per period (a summary holds ≤ 10% of its "
                                                   "period's interactions); ADER replays as many interactions")
]
EpochsOpt = Annotated[int, typer.Option("--epochs", min=1, help="MVAE epochs per period (max; early-stopped)")]
SeedOpt = Annotated[int, typer.Option("--seed", min=0, help="Seed of every random step")]
DeviceOpt = Annotated[Device, typer.Option("--device", help="Where the models run")]


def _configs(*, distill_steps: int, fake_users: int, epochs: int, device: str) -> dict:
    """The flows' ``distill`` and ``training`` parameters: the configs' defaults with these options."""
    distill = dataclasses.replace(DISTILL, steps=distill_steps, n_fake_users=fake_users, device=device)
    mvae = dataclasses.replace(TRAINING.mvae, epochs=epochs, device=device)
    return {"distill": distill,
            "training": dataclasses.replace(TRAINING, mvae=mvae)}


def _strategies(text: str) -> list[str] | None:
    return [s.strip() for s in text.split(",") if s.strip()] or None


def run(
    dataset: DatasetOpt,
    data: Annotated[list[Path], typer.Option("--data", help="File or folder to ingest first")] = [],
    policy: Annotated[
        Optional[str], typer.Option("--policy", help="Period policy (default: the dataset's current one)")
    ] = None,
    reset: Annotated[bool, typer.Option("--reset", help="Allow a policy change that drops results")] = False,
    start: Annotated[
        Optional[int], typer.Option("--from", min=0, help="First period to (re)process (default: all missing work)")
    ] = None,
    end: Annotated[Optional[int], typer.Option("--to", min=0, help="Last period (default: the last finished)")] = None,
    force: Annotated[bool, typer.Option("--force", help="Redo recorded work")] = False,
    strategies: StrategiesOpt = "",
    distill_steps: StepsOpt = DISTILL.steps,
    fake_users: FakeOpt = DISTILL.n_fake_users,
    epochs: EpochsOpt = TRAINING.mvae.epochs,
    seed: SeedOpt = 0,
    device: DeviceOpt = DISTILL.device,
    db: DbOpt = Path(DEFAULT_DB),
    storage_root: RootOpt = Path(DEFAULT_STORAGE_ROOT),
) -> None:
    """Run the continual flow in this process (every finished period whose work is missing, or
    periods --from..--to), then print the report and write the plot. ``backfill`` is the same."""
    from flows.continual import continual_flow
    from flows.model_steps import check_devices
    from relay.console import live_progress
    from relay.prefect_host import prefect_console

    if start is not None and end is not None and start > end:
        raise typer.BadParameter(f"--from {start} is after --to {end}", param_hint="--from/--to")
    configs = _configs(distill_steps=distill_steps, fake_users=fake_users, epochs=epochs, device=device)
    check_devices(**configs)  # before a temporary Prefect server starts: a missing GPU fails at once
    started = time.perf_counter()
    with live_progress(prefect_console()):
        outcomes = continual_flow(
            dataset=dataset, data=[str(p) for p in data], policy=policy, reset=reset, start=start, end=end,
            force=force, strategies=_strategies(strategies), seed=seed, db=str(db), storage_root=str(storage_root),
            **configs,
        )
    for o in outcomes:
        typer.echo(
            f"period {o.period}: {len(o.summary_metas)} summaries, {len(o.train_metas)} models, "
            f"{len(o.evaluated)} evaluations"
        )
    typer.echo(f"continual flow finished in {time.perf_counter() - started:.1f} s")
    report(dataset=dataset, db=db, storage_root=storage_root, out=None)


def report(
    dataset: DatasetOpt,
    db: DbOpt = Path(DEFAULT_DB),
    storage_root: RootOpt = Path(DEFAULT_STORAGE_ROOT),
    out: Annotated[Optional[Path], typer.Option("--out", help="Plot file (PNG)")] = None,
    matrix: Annotated[bool, typer.Option("--matrix", help="Also print each strategy's accuracy matrix "
                                                          "(nDCG@10 of M_t on every period j) and forgetting")] = False,
) -> None:
    """Print the per-period nDCG@10 table and the means of every metric; write the plot."""
    import polars as pl

    from storage.layout import Layout
    from tasks.catalog import metrics_frame, models_frame
    from tasks.report import (accuracy_matrix, long_table, pivot_metric, plot_metric, replay_pivot, rounded,
                              transfer_table, with_replay)

    metrics = metrics_frame(str(db), dataset=dataset)
    if metrics.is_empty():
        raise typer.BadParameter(
            f"no metrics recorded for dataset {dataset!r}", param_hint="--dataset"
        )
    models = models_frame(str(db), dataset=dataset)
    with pl.Config(tbl_rows=100, tbl_cols=30, tbl_width_chars=250, tbl_hide_dataframe_shape=True):
        typer.echo("nDCG@10 of M_t on period t+1 (x100):")
        typer.echo(rounded(pivot_metric(metrics, metric="ndcg", k=10)))
        typer.echo("Replayed by M_t's training besides period t's rows: interactions (rows):")
        typer.echo(replay_pivot(models))
        means = with_replay(long_table(metrics), models).drop("trained_through", "evaluated_on").group_by("strategy")
        typer.echo("Mean over evaluated periods:")
        typer.echo(rounded(means.mean().sort("strategy")))
        for strategy in sorted(metrics["strategy"].unique().to_list()) if matrix else ():
            typer.echo(f"{strategy}: nDCG@10 of the model trained through t (rows) on period j (columns):")
            typer.echo(rounded(accuracy_matrix(metrics, strategy=strategy)))
        if matrix:
            typer.echo("Last model's mean nDCG@10 over the periods it trained on, and backward transfer:")
            typer.echo(rounded(transfer_table(metrics)))
    out = out or Layout(storage_root, dataset).report("ndcg-10.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(plot_metric(metrics, metric="ndcg", k=10))
    typer.echo(f"plot written to {out}")


def deploy(
    prefect_file: Annotated[
        Path, typer.Option("--prefect-file", help="Deployments file")
    ] = PREFECT_FILE,
    pools: Annotated[
        bool, typer.Option("--pools/--no-pools", help="Create pools and limits")
    ] = True,
    gpu_limit: Annotated[
        int, typer.Option("--gpu-limit", min=1, help="Model steps running at once: the number of GPUs (gpu tag limit)")
    ] = 1,
) -> None:
    """Create the `cpu`/`gpu` process pools and the `gpu` tag limit, then deploy every deployment.

    Needs a Prefect server (``PREFECT_API_URL``). Deploys from the repository root, which becomes
    the workers' working directory.
    """
    if pools:
        ensure_pools_and_limits(gpu_limit=gpu_limit)
    cmd = [
        str(Path(sys.executable).with_name("prefect")), "--no-prompt", "deploy", "--all",
        "--prefect-file", str(prefect_file.resolve()),
    ]
    subprocess.run(cmd, cwd=REPO_ROOT, check=True)


def ensure_pools_and_limits(*, gpu_limit: int = 1) -> None:
    """Create (or keep) the process work pools and set the ``gpu`` tag concurrency limit."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.workers.process import ProcessWorker

    template = ProcessWorker.get_default_base_job_template()
    with get_client(sync_client=True) as client:
        _wait_for_server(client)
        for name in POOLS:
            client.create_work_pool(
                WorkPoolCreate(name=name, type="process", base_job_template=template),
                overwrite=True,
            )
        client.create_concurrency_limit(tag="gpu", concurrency_limit=gpu_limit)
    typer.echo(f"work pools {', '.join(POOLS)} (process) and tag limit gpu={gpu_limit} ready")


def _wait_for_server(client: SyncPrefectClient, timeout_s: float = 90) -> None:
    """Wait until the Prefect API answers (a server started a moment ago is still starting)."""
    deadline = time.monotonic() + timeout_s
    while (error := client.api_healthcheck()) is not None:
        if time.monotonic() > deadline:
            raise ConnectionError(f"no Prefect server answers at {client.api_url} after {timeout_s:.0f} s: {error}")
        time.sleep(1)


def register(app: typer.Typer) -> None:
    """Add the pipeline commands to ``app`` (``backfill`` is ``run``, read as a period range)."""
    for command in (run, report, deploy):
        app.command(name=command.__name__)(command)
    app.command(name="backfill", help="Re-run periods --from..--to in order (--force redoes recorded work); "
                                      "the same command as run.")(run)
