"""Distillation task of the (possibly remote) ``distill-periods`` flow: array files in and out.

It never touches the catalog; caching, retries and the ``gpu`` tag are those of every model task
(``tasks.policy.MODEL_CACHE``). Every file it reads or writes is named by :mod:`storage.layout`.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

from prefect import task
from prefect.runtime import flow_run

from models import distill_cf
from models.configs import DistillConfig
from storage.arrays import content_key, read_arrays, write_arrays, write_json
from storage.layout import Layout, meta_path
from tasks.policy import MODEL_CACHE, MODELS_CODE
from tasks.progress import ProgressReporter, artifact_key


def summary_key(*, rows_sha: str, distill: DistillConfig, seed: int) -> str:
    """The content key of a summary file (:meth:`storage.layout.Layout.summary`): its input
    content, config, seed and the model code, so a file found under it is this work's result."""
    return content_key(rows_sha, asdict(distill), seed, MODELS_CODE)


def summary_path(*, storage_root: str, dataset: str, period: int, rows_sha: str, distill: DistillConfig,
                 seed: int) -> Path:
    """Where :func:`distill_summary` writes the summary of this work."""
    return Layout(Path(storage_root), dataset).summary(period, summary_key(rows_sha=rows_sha, distill=distill,
                                                                          seed=seed))


@task(name="distill-summary", cache_policy=MODEL_CACHE, tags=["gpu"], persist_result=True, result_serializer="json")
def distill_summary(
    *,
    storage_root: str,
    dataset: str,
    period: int,
    rows_sha: str,
    distill: DistillConfig,
    seed: int,
    force: bool = False,
) -> str:
    """Distill one period's rows into a Distill-CF summary (Sachdeva et al. 2022, §4).

    Args:
        storage_root, dataset, period: locate the input (``Layout.period_rows``) and output files.
        rows_sha: SHA-256 of the period's rows file (the content part of the cache key).
        distill: Distill-CF hyper-parameters.
        seed: seed of the hold-out, the initialisation and the noise.
        force: start over instead of resuming from a checkpoint left by an interrupted run.

    Returns:
        The summary file's path (arrays ``summary``; its ``.json`` meta beside it).
    """
    layout = Layout(Path(storage_root), dataset)
    key = summary_key(rows_sha=rows_sha, distill=distill, seed=seed)
    output, checkpoint = layout.summary(period, key), layout.checkpoint(period, key)
    if force:
        checkpoint.unlink(missing_ok=True)
    rows = read_arrays(layout.period_rows(period))["rows"]
    report = ProgressReporter(
        artifact_key(dataset, "distill-progress"),
        total=distill.steps,
        description=f"Distill-CF of period {period} (loss, val HR@100)",
    )
    started = time.perf_counter()
    result = distill_cf.distill_rows(
        rows, config=distill, seed=seed, progress=report,
        resume=read_arrays(checkpoint) if checkpoint.exists() else None,
        on_checkpoint=lambda arrays: write_arrays(checkpoint, arrays),
    )
    report.done()
    write_arrays(output, {"summary": result.summary})
    checkpoint.unlink(missing_ok=True)
    write_json(
        meta_path(output),
        {
            "dataset": dataset,
            "period": period,
            "run_id": str(flow_run.id),
            "rows": int(result.summary.shape[0]),
            "items": int(result.summary.shape[1]),
            "nnz": int(result.summary.nnz),
            "density": float(result.density),
            "loss": float(result.loss),
            "best_step": int(result.best_step),
            "best_val_hr100": float(result.best_val_hr100),
            "steps": int(result.steps),
            "seconds": time.perf_counter() - started,
            "device": result.device,
            "seed": seed,
            "params": asdict(distill),
            "input_rows": int(rows.shape[0]),
            "input_nnz": int(rows.nnz),
            "share_of_period": float(result.summary.nnz / max(rows.nnz, 1)),
        },
    )
    return str(output)
