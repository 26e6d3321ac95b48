"""Evaluation task: M_t^s on period t+1 (docs/architecture.md §3), run by the parent flow process.

It reads the next period's bags and the item statistics through t from the catalog, scores with
the stored strategy state, and replaces the (strategy, t, t+1) metric rows: re-running it never
duplicates rows. Deterministic given the seed, so retries cover only the catalog I/O.
"""

from __future__ import annotations

from prefect import task

from models import continual_eval
from models.metrics import parse_metric_key
from models.strategies import strategy_state_from_arrays
from storage import matrices, results
from storage.arrays import read_arrays
from tasks.catalog import open_catalog
from tasks.policy import IO_TASK


@task(name="evaluate-model", **IO_TASK)
def evaluate_model(
    db: str,
    *,
    dataset: str,
    strategy: str,
    trained_through: int,
    evaluated_on: list[int],
    state_path: str,
    run_id: str,
    seed: int = 0,
) -> dict[int, dict[str, float]]:
    """Evaluate M_trained_through^strategy on each period of ``evaluated_on`` and record the metrics.

    The next period (t+1) is the continual protocol's test; earlier periods (j ≤ t) fill the
    accuracy matrix that measures forgetting.

    Returns:
        period → the metric values written (keys like ``"ndcg@10"``, ``"auc"``, ``"dropped_targets"``).
    """
    state = strategy_state_from_arrays(read_arrays(state_path))
    with open_catalog(db) as con:
        bags = {j: matrices.period_matrix(con, dataset=dataset, period=j).matrix for j in evaluated_on}
        seen = matrices.items_seen_through(con, dataset=dataset, period=trained_through)
        counts = matrices.item_counts_through(con, dataset=dataset, period=trained_through)
    values = {j: continual_eval.evaluate_period(state.model, rows, seen_items=seen, item_counts=counts, seed=seed)
              for j, rows in bags.items()}
    with open_catalog(db) as con:
        for j, metrics in values.items():
            results.write_metrics(
                con, dataset=dataset, strategy=strategy, trained_through=trained_through, evaluated_on=j,
                values=[(*parse_metric_key(key), value) for key, value in metrics.items()], run_id=run_id,
            )
    return values
