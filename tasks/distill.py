"""Distillation task of the (possibly remote) ``distill-period`` flow: array files in and out.

It never touches the catalog; caching, retries and the ``gpu`` tag are those of every model task
(``tasks.policy.MODEL_CACHE``).
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from prefect import task
from prefect.runtime import flow_run

from models import distill_cf
from tasks.artifacts import ProgressReporter, artifact_key
from tasks.files import csr_arrays, csr_from, read_arrays, write_arrays, write_json
from tasks.policy import MODEL_CACHE, MODELS_CODE


@task(name="distill-summary", cache_policy=MODEL_CACHE, tags=["gpu"], persist_result=True)
def distill_summary(
    *,
    dataset: str,
    period: int,
    rows_path: str,
    rows_sha: str,
    output_path: str,
    config: dict[str, Any],
    fresh: bool = False,
) -> str:
    """Distill one period's rows into a Distill-CF summary (Sachdeva et al. 2022, §4).

    Args:
        dataset, period: identify the work (part of the cache key).
        rows_path: array file with the period's (user, period) bags under prefix ``rows``.
        rows_sha: SHA-256 of ``rows_path`` (the content part of the cache key).
        output_path: where the summary arrays (prefix ``summary``) and ``<path>.json`` meta go.
        config: overrides of ``models.distill_cf.PERIOD_CONFIG`` (C's per-period defaults).
        fresh: start over instead of resuming from a checkpoint left by an interrupted run.

    Returns:
        ``output_path``.
    """
    rows = csr_from(read_arrays(rows_path), prefix="rows")
    cfg = replace(distill_cf.PERIOD_CONFIG, **config)
    report = ProgressReporter(
        artifact_key(dataset, "distill-progress"),
        total=cfg.steps,
        description=f"Distill-CF of period {period} (loss, val HR@100)",
    )
    started = time.perf_counter()
    # Named by the output's content key and the model code: only the same work resumes from it.
    checkpoint = Path(f"{output_path}.{MODELS_CODE[:12]}.ckpt")
    if fresh:
        checkpoint.unlink(missing_ok=True)
    result = distill_cf.distill_rows(
        rows, config=cfg, progress=report, checkpoint_path=checkpoint
    )
    report.done()
    write_arrays(output_path, csr_arrays(result.summary, prefix="summary"))
    write_json(
        output_path + ".json",
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
            "seed": int(cfg.seed),
            "params": config,
            "input_rows": int(rows.shape[0]),
        },
    )
    return output_path
