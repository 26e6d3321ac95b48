"""Distillation task of the (possibly remote) ``distill-period`` flow: array file in, array file out.

They never touch the catalog. The cache key is INPUTS + TASK_SOURCE over (dataset, period,
content SHA-256 of the input files, budgets, output path), never over arrays; the output path is
content-addressed by the caller, so a cache hit always points at the file that run wrote. Model
work is deterministic given its seed, so there are no retries (a failure is a bug, not weather).
The tag ``gpu`` puts it under the ``gpu`` tag concurrency limit (one per GPU).
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import INPUTS, TASK_SOURCE
from prefect.runtime import flow_run

from models import distill_cf
from tasks.artifacts import ProgressReporter, artifact_key
from tasks.files import csr_arrays, csr_from, read_arrays, write_arrays, write_json


@task(name="distill-summary", cache_policy=INPUTS + TASK_SOURCE, tags=["gpu"], persist_result=True)
def distill_summary(
    *,
    dataset: str,
    period: int,
    rows_path: str,
    rows_sha: str,
    output_path: str,
    config: dict[str, Any],
) -> str:
    """Distill one period's rows into a Distill-CF summary (Sachdeva et al. 2022, §4).

    Args:
        dataset, period: identify the work (part of the cache key).
        rows_path: array file with the period's (user, period) bags under prefix ``rows``.
        rows_sha: SHA-256 of ``rows_path`` (the content part of the cache key).
        output_path: where the summary arrays (prefix ``summary``) and ``<path>.json`` meta go.
        config: overrides of ``models.distill_cf.PERIOD_CONFIG`` (C's per-period defaults).

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
    checkpoint = Path(output_path + ".ckpt")  # content-addressed like the output: safe to resume
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
