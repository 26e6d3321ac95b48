"""Training task of the (possibly remote) ``train-period`` flow: array files in, a state file out.

It never touches the catalog; caching, retries and the ``gpu`` tag are those of every model task
(``tasks.policy.MODEL_CACHE``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from prefect import task
from prefect.runtime import flow_run

from models import replay
from models.mvae import MVAEConfig
from tasks.artifacts import ProgressReporter, artifact_key
from tasks.files import csr_from, read_arrays, write_json
from tasks.policy import MODEL_CACHE


def replay_config(
    *, epochs: int, patience: int, lr: float, batch_size: int, exemplar_budget: int, seed: int
) -> replay.ReplayConfig:
    """The strategies' config from the flow budgets; ADER's exemplars per period = μ (fair)."""
    return replay.ReplayConfig(
        mvae=MVAEConfig(epochs=epochs, patience=patience, lr=lr, batch_size=batch_size, seed=seed),
        exemplars_per_period=exemplar_budget,
        seed=seed,
    )


@task(name="train-strategy", cache_policy=MODEL_CACHE, tags=["gpu"], persist_result=True)
def train_strategy(
    *,
    dataset: str,
    period: int,
    strategy: str,
    inputs_path: str,
    inputs_sha: str,
    previous_path: str | None,
    previous_sha: str | None,
    output_path: str,
    config: dict[str, Any],
) -> str:
    """Train M_period^strategy from the exported inputs and M_{period-1} (DESIGN.md §3).

    Args:
        dataset, period, strategy: identify the work (part of the cache key).
        inputs_path: array file from ``export_train_inputs`` (current, past, summaries, item_mask).
        inputs_sha, previous_sha: content hashes of the input files (the cache key's content part).
        previous_path: state file of M_{period-1}^strategy, or None for a cold start.
        output_path: where the new strategy state and ``<path>.json`` meta go.
        config: budgets for :func:`replay_config` (epochs, patience, lr, batch_size, exemplar_budget, seed).

    Returns:
        ``output_path``.
    """
    arrays = read_arrays(inputs_path)
    cfg = replay_config(**config)
    previous = replay.load_strategy_state(previous_path) if previous_path else None
    current = csr_from(arrays, prefix="current")
    past = csr_from(arrays, prefix="past")
    fake = csr_from(arrays, prefix="summaries")
    report = ProgressReporter(
        artifact_key(dataset, "train-progress", strategy),
        total=cfg.mvae.epochs,
        description=f"{strategy} MVAE of period {period} (epoch loss, val nDCG@100)",
    )
    started = time.perf_counter()
    state = replay.train_strategy(
        strategy,
        current=current,
        past=past,
        summaries=fake,
        previous=previous,
        item_mask=arrays["item_mask"],
        config=cfg,
        progress=lambda epoch, loss, ndcg: report(epoch + 1, loss, ndcg),  # epochs are 0-based
    )
    report.done()
    tmp = Path(output_path + ".tmp")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    replay.save_strategy_state(state, tmp)
    os.replace(tmp, output_path)  # atomic: a killed run never leaves half a state file
    write_json(
        output_path + ".json",
        {
            "dataset": dataset,
            "period": period,
            "strategy": strategy,
            "run_id": str(flow_run.id),
            "rows_current": int(current.shape[0]),
            "rows_replayed": int(state.rows_used - current.shape[0]),
            "seconds": time.perf_counter() - started,
            "params": config,
        },
    )
    return output_path
