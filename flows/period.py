"""Every step of one finished period: distill it, evaluate M_{t-1} on it, train M_t, record.

Order inside a period (DESIGN.md §3): the summary S_t, then the previous period's models on t
(metrics), then each strategy's M_t. Each step is skipped when the catalog already holds its
result (unless ``force``), so a killed run picks up where it stopped. GPU steps run as the
``distill-period``/``train-period`` deployments when ``gpu_pool`` is set, in-process otherwise;
either way they only exchange files, and this (parent) process records their results.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow
from prefect.deployments import run_deployment
from prefect.runtime import flow_run
from pydantic import BaseModel

from flows.distill_period import distill_period
from flows.train_period import train_period
from flows.params import DistillPeriodParams, PeriodParams, TrainPeriodParams
from relay.config import get_settings
from tasks.catalog import (
    DoneWork,
    export_period_rows,
    export_train_inputs,
    find_model,
    read_done_work,
    record_model,
    record_summary,
)
from tasks.artifacts import artifact_key, set_progress, start_progress
from tasks.evaluate import evaluate_model
from tasks.files import content_key

DISTILL_DEPLOYMENT = "distill-period/distill-period"
TRAIN_DEPLOYMENT = "train-period/train-period"
COLD_START = frozenset({"joint"})


class PeriodOutcome(BaseModel):
    """What one period's run did: meta files of new summaries/models, evaluations made."""

    period: int
    summary_metas: list[str] = []
    train_metas: list[str] = []
    evaluated: list[str] = []


def needs_work(done: DoneWork, *, period: int, strategies: list[str]) -> bool:
    """True when ``period`` lacks its summary, a model, or an evaluation of M_{period-1}."""
    return (
        period not in done.summaries
        or any((s, period) not in done.models for s in strategies)
        or (period > 0 and any((s, period - 1, period) not in done.evaluations for s in strategies))
    )


def _run_gpu_flow(local_flow, deployment: str, params: BaseModel, *, gpu_pool: str | None) -> None:
    """Run a GPU flow in-process, or as ``deployment`` on the GPU pool; raise if it failed.

    The idempotency key joins this flow run's id with the work's content key, so retrying the
    parent within one run never submits the same work twice, while a new run can redo failed work.
    """
    if gpu_pool is None:
        local_flow(params)
        return
    key = f"{flow_run.id}-{content_key(params.model_dump(mode='json'))}"
    child = run_deployment(
        deployment,
        parameters={"params": params.model_dump(mode="json")},
        idempotency_key=key,
        poll_interval=1,
        timeout=None,
    )
    if not child.state or not child.state.is_completed():
        raise RuntimeError(f"{deployment} run {child.id} ended {child.state and child.state.name}")


@flow(name="process-period", log_prints=True)
def process_period(params: PeriodParams) -> PeriodOutcome:
    """Distill period t, evaluate every M_{t-1}^s on it, train every M_t^s; record all of it."""
    settings = get_settings()
    db, root = str(settings.db), Path(settings.storage_root).resolve()
    t = params.period
    done = read_done_work(
        db, dataset=params.dataset, periods=[max(t - 1, 0), t], strategies=list(params.strategies)
    )
    outcome = PeriodOutcome(period=t)
    if params.force or t not in done.summaries:
        outcome.summary_metas.append(_distill(params, db=db, root=root))
    for strategy in params.strategies if t > 0 else []:
        if params.force or (strategy, t - 1, t) not in done.evaluations:
            outcome.evaluated += _evaluate_previous(params, strategy, db=db)
    todo = [s for s in params.strategies if params.force or (s, t) not in done.models]
    if todo:
        outcome.train_metas += _train_all(params, todo, db=db, root=root)
    return outcome


def _distill(params: PeriodParams, *, db: str, root: Path) -> str:
    """Export period t's rows, distill them (GPU flow), record the summary; returns its meta."""
    t = params.period
    rows = export_period_rows(db, str(root), dataset=params.dataset, period=t)
    key = content_key(rows.sha, params.budgets.distill_kwargs())
    out = root / params.dataset / "summaries" / f"period-{t:04d}-{key}.arrays"
    _run_gpu_flow(
        distill_period,
        DISTILL_DEPLOYMENT,
        DistillPeriodParams(
            dataset=params.dataset, period=t, rows_path=rows.path, rows_sha=rows.sha,
            output_path=str(out), budgets=params.budgets, refresh=params.force,
        ),
        gpu_pool=params.gpu_pool,
    )
    record_summary(db, dataset=params.dataset, period=t, summary_path=str(out))
    return str(out) + ".json"


def _evaluate_previous(params: PeriodParams, strategy: str, *, db: str) -> list[str]:
    """Evaluate M_{t-1}^strategy on period t (nothing when it was never trained)."""
    t = params.period
    state = find_model(db, dataset=params.dataset, strategy=strategy, period=t - 1)
    if state is None:
        print(f"no M_{t - 1} for {strategy}: nothing to evaluate on period {t}")
        return []
    evaluate_model(
        db, dataset=params.dataset, strategy=strategy, trained_through=t - 1, evaluated_on=t,
        state_path=state.path, run_id=str(flow_run.id), seed=params.budgets.seed,
    )
    return [f"{strategy}:{t - 1}->{t}"]


def _train_all(params: PeriodParams, todo: list[str], *, db: str, root: Path) -> list[str]:
    """Train each strategy of ``todo`` in order, moving the period's progress artifact."""
    t = params.period
    bar = start_progress(artifact_key(params.dataset, "train-progress"), description=f"period {t}")
    metas = []
    for i, strategy in enumerate(todo):
        metas.append(_train(params, strategy, db=db, root=root))
        set_progress(
            bar, progress=100.0 * (i + 1) / len(todo),
            description=f"period {t}: trained {', '.join(todo[: i + 1])} of {len(todo)}",
        )
    return metas


def _train(params: PeriodParams, strategy: str, *, db: str, root: Path) -> str:
    """Export the strategy's inputs, train M_t (GPU flow), register it; returns its meta."""
    t = params.period
    inputs = export_train_inputs(db, str(root), dataset=params.dataset, period=t, strategy=strategy)
    previous = None
    if t > 0 and strategy not in COLD_START:
        previous = find_model(db, dataset=params.dataset, strategy=strategy, period=t - 1)
    key = content_key(inputs.sha, previous and previous.sha, params.budgets.replay_kwargs())
    out = root / params.dataset / "models" / strategy / f"period-{t:04d}-{key}.state"
    _run_gpu_flow(
        train_period,
        TRAIN_DEPLOYMENT,
        TrainPeriodParams(
            dataset=params.dataset, period=t, strategy=strategy, inputs_path=inputs.path,
            inputs_sha=inputs.sha, previous_path=previous and previous.path,
            previous_sha=previous and previous.sha, output_path=str(out),
            budgets=params.budgets, refresh=params.force,
        ),
        gpu_pool=params.gpu_pool,
    )
    record_model(db, dataset=params.dataset, strategy=strategy, period=t, path=str(out))
    return str(out) + ".json"
