"""Pipeline commands: ``relay run``, ``relay backfill``, ``relay report``, ``relay deploy``.

``run`` and ``backfill`` call the flows in this process. With no ``PREFECT_API_URL`` configured,
Prefect starts a temporary local server for the run (ephemeral mode), so nothing needs to be set
up first; with a server configured, the runs show up in its UI.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

REPO_ROOT = Path(__file__).resolve().parents[2]
PREFECT_FILE = REPO_ROOT / "deployments" / "prefect.yaml"
POOLS = ("cpu", "gpu")
GPU_TAG_LIMIT = 1

DbOpt = Annotated[Optional[Path], typer.Option("--db", help="DuckDB catalog (default: RELAY_DB)")]
RootOpt = Annotated[
    Optional[Path],
    typer.Option("--storage-root", help="Files folder (default: RELAY_STORAGE_ROOT)"),
]
DatasetOpt = Annotated[str, typer.Option("--dataset", help="Dataset name")]
StrategiesOpt = Annotated[
    str, typer.Option("--strategies", help="Comma-separated: individual,joint,distill_cf,ader")
]
StepsOpt = Annotated[
    Optional[int], typer.Option("--distill-steps", help="Distill-CF steps per period [30]")
]
FakeOpt = Annotated[
    Optional[int], typer.Option("--fake-users", help="μ: summary rows (and ADER exemplars) [20]")
]
EpochsOpt = Annotated[Optional[int], typer.Option("--epochs", help="MVAE epochs per period [10]")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of every random step")]


def _use_settings(db: Path | None, storage_root: Path | None) -> None:
    """Point the flows (which read ``relay.config.get_settings()``) at the given catalog/folder."""
    if db is not None:
        os.environ["RELAY_DB"] = str(db)
    if storage_root is not None:
        os.environ["RELAY_STORAGE_ROOT"] = str(storage_root)


def _budgets(distill_steps: int | None, fake_users: int | None, epochs: int | None, seed: int):
    """Budgets with the given overrides (None keeps :class:`flows.params.Budgets` defaults)."""
    from flows.params import Budgets

    given = {"distill_steps": distill_steps, "n_fake_users": fake_users, "mvae_epochs": epochs}
    return Budgets(seed=seed, **{k: v for k, v in given.items() if v is not None})


def run(
    dataset: DatasetOpt,
    data: Annotated[list[Path], typer.Option("--data", help="File or folder to ingest first")] = [],
    policy: Annotated[str, typer.Option("--policy", help="Period policy")] = "equal-count:17",
    strategies: StrategiesOpt = "individual,joint,distill_cf,ader",
    distill_steps: StepsOpt = None,
    fake_users: FakeOpt = None,
    epochs: EpochsOpt = None,
    seed: SeedOpt = 0,
    db: DbOpt = None,
    storage_root: RootOpt = None,
) -> None:
    """Run the continual flow in this process, then print the report and write the plot."""
    _use_settings(db, storage_root)
    from flows.continual import continual_flow
    from flows.params import ContinualParams

    started = time.perf_counter()
    continual_flow(
        ContinualParams(
            dataset=dataset,
            data=[str(p) for p in data],
            policy=policy,
            strategies=strategies.split(","),
            budgets=_budgets(distill_steps, fake_users, epochs, seed),
        )
    )
    typer.echo(f"continual flow finished in {time.perf_counter() - started:.1f} s")
    report(dataset=dataset, db=None, storage_root=None, out=None)


def backfill(
    dataset: DatasetOpt,
    start: Annotated[int, typer.Option("--from", help="First period (inclusive)")],
    end: Annotated[int, typer.Option("--to", help="Last period (inclusive)")],
    force: Annotated[bool, typer.Option("--force", help="Redo recorded work")] = False,
    strategies: StrategiesOpt = "individual,joint,distill_cf,ader",
    distill_steps: StepsOpt = None,
    fake_users: FakeOpt = None,
    epochs: EpochsOpt = None,
    seed: SeedOpt = 0,
    db: DbOpt = None,
    storage_root: RootOpt = None,
) -> None:
    """Re-run periods FROM..TO in order, skipping recorded work unless --force."""
    _use_settings(db, storage_root)
    from flows.backfill import backfill_flow
    from flows.params import BackfillParams

    outcomes = backfill_flow(
        BackfillParams(
            dataset=dataset,
            start=start,
            end=end,
            strategies=strategies.split(","),
            force=force,
            budgets=_budgets(distill_steps, fake_users, epochs, seed),
        )
    )
    for o in outcomes:
        typer.echo(
            f"period {o.period}: {len(o.summary_metas)} summaries, {len(o.train_metas)} models, "
            f"{len(o.evaluated)} evaluations"
        )


def report(
    dataset: DatasetOpt,
    db: DbOpt = None,
    storage_root: RootOpt = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Plot file (PNG)")] = None,
) -> None:
    """Print the per-period nDCG@10 table and the means of every metric; write the plot."""
    _use_settings(db, storage_root)
    import polars as pl

    from relay.config import get_settings
    from tasks.catalog import metrics_frame
    from tasks.report import long_table, pivot_metric, plot_metric

    settings = get_settings()
    metrics = metrics_frame(str(settings.db), dataset=dataset)
    if metrics.is_empty():
        raise typer.BadParameter(
            f"no metrics recorded for dataset {dataset!r}", param_hint="--dataset"
        )
    with pl.Config(tbl_rows=100, tbl_cols=30, float_precision=2, tbl_width_chars=250):
        typer.echo("nDCG@10 of M_t on period t+1 (x100):")
        typer.echo(pivot_metric(metrics, metric="ndcg", k=10))
        means = long_table(metrics).drop("trained_through", "evaluated_on").group_by("strategy")
        typer.echo("Mean over evaluated periods:")
        typer.echo(means.mean().sort("strategy"))
    out = out or Path(settings.storage_root) / dataset / "report" / "ndcg-10.png"
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
) -> None:
    """Create the `cpu`/`gpu` process pools and the `gpu` tag limit, then deploy every deployment.

    Needs a Prefect server (``PREFECT_API_URL``). Deploys from the repository root, which becomes
    the workers' working directory.
    """
    if pools:
        ensure_pools_and_limits()
    cmd = [
        str(Path(sys.executable).with_name("prefect")), "--no-prompt", "deploy", "--all",
        "--prefect-file", str(prefect_file.resolve()),
    ]
    subprocess.run(cmd, cwd=REPO_ROOT, check=True)


def ensure_pools_and_limits() -> None:
    """Create (or keep) the process work pools and the ``gpu`` tag concurrency limit (= 1)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.workers.process import ProcessWorker

    template = ProcessWorker.get_default_base_job_template()
    with get_client(sync_client=True) as client:
        for name in POOLS:
            client.create_work_pool(
                WorkPoolCreate(name=name, type="process", base_job_template=template),
                overwrite=True,
            )
        client.create_concurrency_limit(tag="gpu", concurrency_limit=GPU_TAG_LIMIT)
    typer.echo(f"work pools {', '.join(POOLS)} (process) and tag limit gpu={GPU_TAG_LIMIT} ready")


def register(app: typer.Typer) -> None:
    """Add the pipeline commands to ``app``."""
    for command in (run, backfill, report, deploy):
        app.command(name=command.__name__)(command)
