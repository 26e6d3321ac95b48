"""Training task of the (possibly remote) ``train-period`` flow: array files in, a state file out.

It never touches the catalog; caching, retries and the ``gpu`` tag are those of every model task
(``tasks.policy.MODEL_CACHE``). Every file it reads or writes is named by :mod:`storage.layout`.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

from prefect import task
from prefect.runtime import flow_run

from models import strategies
from models.configs import TrainingConfig
from models.device import torch_device
from models.strategies import PeriodData
from storage.arrays import content_key, read_arrays, write_arrays, write_json
from storage.layout import Layout, meta_path
from tasks.policy import MODEL_CACHE, MODELS_CODE
from tasks.progress import ProgressReporter, artifact_key


def state_key(*, inputs_sha: str, previous_sha: str | None, training: TrainingConfig, seed: int) -> str:
    """The content key of a state file (:meth:`storage.layout.Layout.model_state`): its inputs,
    the previous state, training, seed and the model code."""
    return content_key(inputs_sha, previous_sha, asdict(training), seed, MODELS_CODE)


def state_path(*, storage_root: str, dataset: str, period: int, strategy: str, inputs_sha: str,
               previous_sha: str | None, training: TrainingConfig, seed: int) -> Path:
    """Where :func:`train_model` writes the state of this work."""
    return Layout(Path(storage_root), dataset).model_state(strategy, period, state_key(
        inputs_sha=inputs_sha, previous_sha=previous_sha, training=training, seed=seed))


def previous_state_path(layout: Layout, path: str | None) -> Path | None:
    """``path`` as a state file inside the dataset's folder (``ValueError`` otherwise)."""
    if path is None:
        return None
    if not (layout.contains(path) and Path(path).suffix == ".state"):
        raise ValueError(f"previous state {path!r} is not a state file under {layout.folder}")
    return Path(path).resolve()


@task(name="train-strategy", cache_policy=MODEL_CACHE, tags=["gpu"], persist_result=True, result_serializer="json")
def train_model(
    *,
    storage_root: str,
    dataset: str,
    period: int,
    strategy: str,
    inputs_sha: str,
    previous_path: str | None,
    previous_sha: str | None,
    training: TrainingConfig,
    seed: int,
    force: bool = False,
) -> str:
    """Train M_period of ``strategy`` from the exported inputs and M_{period-1} (docs/architecture.md §3).

    Args:
        storage_root, dataset, period, strategy: locate the inputs (``Layout.train_inputs``) and
            the output state file.
        inputs_sha, previous_sha: content hashes of the input files (the cache key's content part).
        previous_path: state file of M_{period-1} (under the dataset's folder), or None.
        training: the shared training rules.
        seed: seed of the validation fold and the MVAE.
        force: not part of the cache key; the caller refreshes the cache with it.

    Returns:
        The state file's path (its ``.json`` meta beside it).
    """
    layout = Layout(Path(storage_root), dataset)
    previous_file = previous_state_path(layout, previous_path)
    arrays = read_arrays(layout.train_inputs(strategy, period))
    data = PeriodData(current=arrays["current"], item_mask=arrays["item_mask"], history=arrays.get("history"),
                      summaries=arrays.get("summaries"), summary_sizes=arrays.get("summary_sizes"))
    previous = strategies.strategy_state_from_arrays(read_arrays(previous_file)) if previous_file else None
    report = ProgressReporter(
        artifact_key(dataset, "train-progress", strategy),
        total=training.mvae.epochs,
        description=f"{strategy} MVAE of period {period} (epoch loss, val nDCG@100)",
    )
    started = time.perf_counter()
    state = strategies.train_strategy(
        strategies.get_strategy(strategy), data, previous=previous, config=training, seed=seed,
        progress=lambda epoch, loss, ndcg: report(epoch + 1, loss, ndcg),  # epochs are 0-based
    )
    report.done()
    output = state_path(storage_root=storage_root, dataset=dataset, period=period, strategy=strategy,
                        inputs_sha=inputs_sha, previous_sha=previous_sha, training=training, seed=seed)
    write_arrays(output, strategies.strategy_state_arrays(state))  # atomic: a killed run never leaves half a file
    write_json(
        meta_path(output),
        {
            "dataset": dataset,
            "period": period,
            "strategy": strategy,
            "run_id": str(flow_run.id),
            "rows_current": int(data.current.shape[0]),
            "interactions_current": int(data.current.nnz),
            "rows_replayed": state.replayed.rows,
            "interactions_replayed": state.replayed.interactions,
            "mass_replayed": state.replayed.mass,
            "epochs": len(state.model.val_history),
            "best_epoch": state.model.best_epoch,
            "val_ndcg100": max(state.model.val_history, default=float("nan")),
            "seconds": time.perf_counter() - started,
            "device": torch_device(training.mvae.device).type,
            "seed": seed,
            "params": asdict(training),
        },
    )
    return str(output)
