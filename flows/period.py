"""Every step of one finished period: distill it, evaluate M_{t-1} on it, train M_t, record.

Order inside a period (docs/architecture.md §3): the summary S_t, then the previous period's
models on t (metrics), then every strategy's M_t (one ``train-period`` step that trains them in
parallel), then M_t on the periods it trained on (forgetting). Each step is skipped when the
catalog already holds its result (unless ``force``), so a killed run picks up where it stopped.

With ``gpu_pool`` set the model steps run as the ``distill-periods``/``train-period`` deployments:
the parent submits the distillation of every period to process as one run, first
(:func:`submit_summaries`; summaries depend on their own period only), then walks the periods in order, since M_t starts
from M_{t-1} and ADER's budget after t needs the size of S_t. Without it they run in-process.
Either way they only exchange files, and this (parent) process records their results.
"""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

from prefect import flow
from prefect.runtime import flow_run
from pydantic import BaseModel

from flows.model_steps import PeriodRows, StrategyWork, distill_periods, train_period, train_work_path
from flows.params import PeriodJob
from flows.steps import run_step, submit_step, wait_for_step
from models.strategies import get_strategy
from storage.arrays import read_json
from storage.layout import meta_path
from tasks.catalog import (
    export_period_rows,
    export_train_inputs,
    find_model,
    read_done_work,
    record_model,
    record_summary,
)
from tasks.distill import summary_path
from tasks.evaluate import evaluate_model
from tasks.progress import PeriodStep, announce, artifact_key, set_progress, start_progress

DISTILL_DEPLOYMENT = "distill-periods/distill-periods"
TRAIN_DEPLOYMENT = "train-period/train-period"


class PeriodOutcome(BaseModel):
    """What one period's run did: meta files of new summaries/models, evaluations made."""

    period: int
    summary_metas: list[str] = []
    train_metas: list[str] = []
    evaluated: list[str] = []


class PendingSummary(BaseModel):
    """A period's exported rows (their SHA-256) and, once submitted to the GPU pool, its run."""

    rows_sha: str
    run_id: UUID | None = None


def submit_summaries(job: PeriodJob, periods: list[int]) -> dict[int, PendingSummary]:
    """On the GPU pool, export the rows of every period of ``periods`` and submit their
    distillations as one run (nothing in-process: each period then distills in its turn)."""
    return {} if job.gpu_pool is None or not periods else _start_summaries(job, periods)


@flow(name="process-period", log_prints=True)
def process_period(job: PeriodJob, period: int, summary: PendingSummary | None = None) -> PeriodOutcome:
    """Distill period t (or wait for its submitted distillation), evaluate every M_{t-1}^s on
    it, train every M_t^s; record all of it."""
    done = read_done_work(job.db, dataset=job.dataset, periods=[max(period - 1, 0), period],
                          strategies=job.strategies)
    todo = done.todo(period, job.strategies, force=job.force, window=job.matrix_window)
    outcome = PeriodOutcome(period=period)
    share = 1 / (1 + len(todo.train))  # of the period's work: the summary, then one per strategy
    if todo.distill:
        announce(PeriodStep(period, "distilling its summary", 0.0))
        outcome.summary_metas.append(_distill(job, period, summary or _start_summaries(job, [period])[period]))
    if todo.evaluate:
        announce(PeriodStep(period, f"evaluating M_{period - 1}", share))
        outcome.evaluated += _evaluate_previous(job, period, todo.evaluate)
    if todo.train:
        announce(PeriodStep(period, f"training {', '.join(todo.train)}", share))
        outcome.train_metas += _train_all(job, period, list(todo.train))
    if todo.remember:
        announce(PeriodStep(period, f"evaluating M_{period} on the periods it trained on", 1.0))
    for strategy, earlier in todo.remember:
        values = _evaluate(job, strategy, trained_through=period, on=list(earlier))
        outcome.evaluated += [f"{strategy}:{period}->{j}" for j in values]
    announce(PeriodStep(period, "done", 1.0))
    return outcome


def _start_summaries(job: PeriodJob, periods: list[int]) -> dict[int, PendingSummary]:
    """Export the rows of ``periods``; on the GPU pool, submit their distillation (one run) now."""
    rows = [PeriodRows(period=p, rows_sha=export_period_rows(job.db, job.storage_root, dataset=job.dataset,
                                                             period=p).sha) for p in periods]
    run_id = None
    if job.gpu_pool is not None:
        run_id = submit_step(DISTILL_DEPLOYMENT, storage_root=job.storage_root, dataset=job.dataset, periods=rows,
                             distill=job.distill, seed=job.seed, force=job.force)
    return {r.period: PendingSummary(rows_sha=r.rows_sha, run_id=run_id) for r in rows}


def _distill(job: PeriodJob, period: int, pending: PendingSummary) -> str:
    """Distill period t's rows (or wait for the submitted run), record the summary; returns its meta."""
    rows = PeriodRows(period=period, rows_sha=pending.rows_sha)
    if pending.run_id is None:
        distill_periods(storage_root=job.storage_root, dataset=job.dataset, periods=[rows], distill=job.distill,
                        seed=job.seed, force=job.force)
    else:
        wait_for_step(pending.run_id, DISTILL_DEPLOYMENT)
    out = summary_path(storage_root=job.storage_root, dataset=job.dataset, period=period, rows_sha=rows.rows_sha,
                       distill=job.distill, seed=job.seed)
    record_summary(job.db, dataset=job.dataset, period=period, summary_path=str(out))
    meta = read_json(meta_path(out))
    print(f"period {period}: summary S_{period} of {meta['rows']} fake users holds {meta['nnz']:,} interactions, "
          f"{100 * meta['share_of_period']:.1f}% of the period's {meta['input_nnz']:,}; {meta['steps']} steps "
          f"(best {meta['best_step']}), val HR@100 {meta['best_val_hr100']:.2f}; {meta['seconds']:.1f} s on "
          f"{meta['device']}")
    return str(meta_path(out))


def _evaluate_previous(job: PeriodJob, period: int, strategies: tuple[str, ...]) -> list[str]:
    """Evaluate each strategy's M_{t-1} on period t (the continual test) and log their nDCG@10."""
    scores = {}
    for strategy in strategies:
        if values := _evaluate(job, strategy, trained_through=period - 1, on=[period]):
            scores[strategy] = values[period]
    if scores:
        print(f"period {period}: nDCG@10 of M_{period - 1} on it: "
              + ", ".join(f"{s} {m['ndcg@10']:.2f}" for s, m in scores.items()))
    return [f"{s}:{period - 1}->{period}" for s in scores]


def _evaluate(job: PeriodJob, strategy: str, *, trained_through: int, on: list[int]) -> dict[int, dict[str, float]]:
    """Evaluate M_trained_through^strategy on the periods ``on``; period → metrics (none when it
    was never trained)."""
    state = find_model(job.db, dataset=job.dataset, strategy=strategy, period=trained_through)
    if state is None:
        print(f"no M_{trained_through} for {strategy}: nothing to evaluate on periods {on}")
        return {}
    return evaluate_model(
        job.db, dataset=job.dataset, strategy=strategy, trained_through=trained_through, evaluated_on=on,
        state_path=state.path, run_id=str(flow_run.id), seed=job.seed,
    )


def _strategy_work(job: PeriodJob, period: int, strategy: str) -> StrategyWork:
    """Export what ``strategy`` trains on at ``period`` and find the state it starts from."""
    inputs = export_train_inputs(job.db, job.storage_root, dataset=job.dataset, period=period, strategy=strategy)
    previous = None
    if period > 0 and get_strategy(strategy).warm_start:
        previous = find_model(job.db, dataset=job.dataset, strategy=strategy, period=period - 1)
    return StrategyWork(strategy=strategy, inputs_sha=inputs.sha, previous_path=previous and previous.path,
                        previous_sha=previous and previous.sha)


def _train_all(job: PeriodJob, period: int, todo: list[str]) -> list[str]:
    """Train every strategy of ``todo`` in one step (in parallel), record each new model.

    A strategy whose state was written is recorded even when another one failed, so a re-run
    trains only the rest."""
    bar = start_progress(artifact_key(job.dataset, "train-progress"), description=f"period {period}")
    works = [_strategy_work(job, period, s) for s in todo]
    where = dict(storage_root=job.storage_root, dataset=job.dataset, period=period)
    try:
        run_step(train_period, TRAIN_DEPLOYMENT, gpu_pool=job.gpu_pool, **where, strategies=works,
                 training=job.training, seed=job.seed, force=job.force)
    finally:
        metas = [m for w in works if (m := _record_trained(job, period, w)) is not None]
    lines = [_trained_line(read_json(m)) for m in metas]
    set_progress(bar, progress=100.0 * len(metas) / len(works),
                 description=f"period {period}: trained {len(metas)} of {len(works)}: {'; '.join(lines)}")
    for line in lines:
        print(f"period {period}: {line}")
    return metas


def _record_trained(job: PeriodJob, period: int, work: StrategyWork) -> str | None:
    """Record the state ``work`` produced, if its files are there; returns its meta."""
    out = train_work_path(storage_root=job.storage_root, dataset=job.dataset, period=period, work=work,
                          training=job.training, seed=job.seed)
    meta = meta_path(Path(out))
    if not meta.exists():
        return None
    record_model(job.db, dataset=job.dataset, strategy=work.strategy, period=period, path=out)
    return str(meta)


def _trained_line(meta: dict) -> str:
    return (f"{meta['strategy']} trained {meta.get('epochs', '?')} epochs (best {meta['best_epoch']}), val nDCG@100 "
            f"{meta['val_ndcg100']:.2f}, replayed {meta['rows_replayed']:,} rows / {meta['interactions_replayed']:,} "
            f"interactions; {meta['seconds']:.1f} s on {meta['device']}")
