"""Continual benchmark: Individual, Joint, ADER and Distill-CF replay over equal-count periods.

Ingests the file into a temporary DuckDB, cuts ``--periods`` equal-count periods, distills every
period but the last two into μ fake rows (Distill-CF), then for t = 0..T−2 trains every strategy on
period t (``models.strategies.train_strategy``) and evaluates it on period t+1
(``models.continual_eval.evaluate_next_period``). Hyper-parameters are chosen on the validation
fold inside each training period (``val_ndcg100`` in the output), never on period t+1.

    .venv/bin/python bench/continual.py --data data/ml-latest-small/ratings.csv --periods 17 \
        [--strategies individual,joint,distill_cf,ader] [--json OUT] [--plot OUT.png]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from models.configs import DistillConfig, MVAEConfig, TrainingConfig
from models.continual_eval import evaluate_next_period
from models.distill_cf import distill_rows
from models.gumbel import SAMPLERS
from models.strategies import STRATEGIES, PeriodData, Source, StrategyState, train_strategy
from storage.catalog import connect
from storage.ingest import ingest_file
from storage.matrices import item_counts_through, items_seen_through, period_matrix
from storage.periods import cut_periods

METRICS = ("hr@10", "ndcg@10", "ndcg@100", "psp@10", "auc", "dropped_targets", "val_ndcg100")
DATASET = "bench"


def load_periods(path: Path, n_periods: int, workdir: Path) -> tuple[list[sp.csr_matrix], list[np.ndarray],
                                                                        list[np.ndarray]]:
    """Rows, seen-item masks and item counts through each period, from a temporary catalog."""
    con = connect(workdir / "bench.duckdb")
    try:
        ingest_file(con, path, dataset=DATASET)
        cut_periods(con, dataset=DATASET, policy=f"equal-count:{n_periods}")
        rows = [period_matrix(con, dataset=DATASET, period=p).matrix for p in range(n_periods)]
        seen = [items_seen_through(con, dataset=DATASET, period=p) for p in range(n_periods)]
        counts = [item_counts_through(con, dataset=DATASET, period=p) for p in range(n_periods)]
    finally:
        con.close()
    return rows, seen, counts


def distill_periods(rows: list[sp.csr_matrix], *, config: DistillConfig, seed: int
                    ) -> tuple[list[sp.csr_matrix], float]:
    """Distill-CF summary (≤ μ fake rows) of every period that some training step replays."""
    start = time.perf_counter()
    summaries = [distill_rows(r, config=config, seed=seed).summary for r in rows[:-2]]
    return summaries, time.perf_counter() - start


def period_data(strategy: str, rows: list[sp.csr_matrix], seen: list[np.ndarray], summaries: list[sp.csr_matrix],
                t: int) -> PeriodData:
    """What ``strategy`` may train on at period t (only the sources it declares)."""
    needs = STRATEGIES[strategy].needs
    return PeriodData(
        current=rows[t], item_mask=seen[t],
        history=sp.vstack(rows[:t], format="csr") if t and Source.HISTORY in needs else None,
        summaries=sp.vstack(summaries[:t], format="csr") if t and Source.SUMMARIES in needs else None,
    )


def run(rows: list[sp.csr_matrix], seen: list[np.ndarray], counts: list[np.ndarray], *,
        strategies: tuple[str, ...], summaries: list[sp.csr_matrix], config: TrainingConfig,
        seed: int) -> dict[str, dict]:
    """Train every strategy period by period and evaluate it on the next period."""
    out = {s: {"per_period": {m: [] for m in METRICS}, "rows_per_period": [], "seconds": 0.0} for s in strategies}
    states: dict[str, StrategyState | None] = dict.fromkeys(strategies)
    for t in range(len(rows) - 1):
        for s in strategies:
            started = time.perf_counter()
            states[s] = train_strategy(STRATEGIES[s], period_data(s, rows, seen, summaries, t), previous=states[s],
                                       config=config, seed=seed)
            out[s]["seconds"] += time.perf_counter() - started
            result = evaluate_next_period(states[s].model, rows[t + 1], seen_items=seen[t],
                                          item_counts=counts[t], seed=seed)
            result["val_ndcg100"] = max(states[s].model.val_history)
            for m in METRICS:
                out[s]["per_period"][m].append(float(result[m]))
            out[s]["rows_per_period"].append(states[s].rows_used)
        print(f"period {t:2d} → {t + 1:2d}  " + "  ".join(
            f"{s} {out[s]['per_period']['ndcg@10'][-1]:6.2f}" for s in strategies), flush=True)
    for s in strategies:
        out[s]["mean"] = {m: float(np.mean(v)) for m, v in out[s]["per_period"].items()}
        out[s]["rows_last_period"] = out[s]["rows_per_period"][-1]
    return out


def print_report(results: dict[str, dict]) -> None:
    """Per-period nDCG@10 table, then means, last-period rows and seconds per strategy."""
    strategies = list(results)
    n = len(results[strategies[0]]["per_period"]["ndcg@10"])
    print("\nnDCG@10 of M_t on period t+1")
    print(f"{'t':>3} " + "".join(f"{s:>12}" for s in strategies))
    for t in range(n):
        print(f"{t:>3} " + "".join(f"{results[s]['per_period']['ndcg@10'][t]:>12.2f}" for s in strategies))
    print("\nmean over periods")
    print(f"{'strategy':<12}" + "".join(f"{m:>16}" for m in METRICS) + f"{'rows_last':>11}{'seconds':>9}")
    for s in strategies:
        r = results[s]
        print(f"{s:<12}" + "".join(f"{r['mean'][m]:>16.4f}" for m in METRICS)
              + f"{r['rows_last_period']:>11d}{r['seconds']:>9.1f}")


def plot(results: dict[str, dict], path: Path, title: str) -> None:
    """PNG of nDCG@10 per period, one line per strategy."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    for s, r in results.items():
        values = r["per_period"]["ndcg@10"]
        ax.plot(range(1, len(values) + 1), values, marker="o", label=s)
    ax.set_xlabel("evaluated on period t+1")
    ax.set_ylabel("nDCG@10")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--periods", type=int, default=17)
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    distill, mvae = DistillConfig(), MVAEConfig()
    parser.add_argument("--mu", type=int, default=distill.n_fake_users,
                        help="fake rows per period summary (= ADER exemplars/period)")
    parser.add_argument("--epochs", type=int, default=mvae.epochs)
    parser.add_argument("--patience", type=int, default=mvae.patience)
    parser.add_argument("--batch-size", type=int, default=mvae.batch_size)
    parser.add_argument("--lr", type=float, default=mvae.lr)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise", choices=tuple(SAMPLERS), default=distill.noise,
                        help="Distill-CF Gumbel sampler (models.gumbel)")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads for torch and XLA (1 is fastest on a shared, busy machine)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--plot", type=Path, default=None)
    args = parser.parse_args()
    strategies = tuple(s.strip() for s in args.strategies.split(",") if s.strip())
    unknown = set(strategies) - set(STRATEGIES)
    if unknown:
        parser.error(f"--strategies: unknown {sorted(unknown)}; choose from {STRATEGIES}")

    torch.set_num_threads(args.threads)
    if args.threads == 1:  # read when JAX creates its CPU client, i.e. at the first distillation
        os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        rows, seen, counts = load_periods(args.data, args.periods, Path(tmp))
    print(f"{args.data}: {args.periods} periods, rows per period {[r.shape[0] for r in rows]}", flush=True)
    summaries, distill_seconds = ([], 0.0)
    replaying = [s for s in strategies if Source.SUMMARIES in STRATEGIES[s].needs]
    if replaying:
        summaries, distill_seconds = distill_periods(
            rows, config=replace(distill, n_fake_users=args.mu, noise=args.noise), seed=args.seed)
        print(f"distilled {len(summaries)} periods into ≤ {args.mu} rows each in {distill_seconds:.1f} s", flush=True)
    mvae = replace(mvae, epochs=args.epochs, patience=args.patience, batch_size=args.batch_size, lr=args.lr)
    config = TrainingConfig(mvae=mvae, exemplars_per_period=args.mu)
    results = run(rows, seen, counts, strategies=strategies, summaries=summaries, config=config, seed=args.seed)
    for s in replaying:
        results[s]["distill_seconds"] = distill_seconds
        results[s]["seconds"] += distill_seconds
    print_report(results)
    print(f"\ntotal {time.perf_counter() - start:.1f} s ({', '.join(replaying) or 'no strategy'} seconds include "
          f"{distill_seconds:.1f} s of distillation)")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))
    if args.plot is not None:
        plot(results, args.plot, f"{args.data.name}, {args.periods} periods")


if __name__ == "__main__":
    main()
