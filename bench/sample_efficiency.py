"""Benchmark: sample efficiency of the samplers (∞-AE / Distill-CF paper, Fig. 1), no Prefect.

    .venv/bin/python bench/sample_efficiency.py --data ../shared/data/paper-splits/ml-1m.parquet \\
        --budgets 50,100,200,500,1000,2000,all --json bench/out/se-ml-1m.json --plot bench/out/se-ml-1m.png

For every sampler and user budget (interaction samplers at the matching share of interactions),
train each model on the sample (λ chosen on the full validation split) and test it on the full
test split. The JSON maps model → sampler → budget → {hr@10, psp@10, ndcg@10, users,
interactions, sample_seconds, fit_seconds, test_seconds, chosen_lambda, budget_users}; "all" (the
full data) is always there. Prints one table per (metric) with budgets as columns, and where the
time went.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from models.configs import ExperimentConfig
from models.experiments import REPORT_KEYS, run_grid
from models.samplers import SAMPLERS
from storage.static_splits import dataset_label, read_static_split
from tasks.experiment_report import pivot_rows, plot_sample_efficiency, table_markdown


def names(text: str) -> list[str]:
    """``"a, b,"`` → ``["a", "b"]`` (the comma-separated options of the experiment benches)."""
    return [part.strip() for part in text.split(",") if part.strip()]


def add_grid_options(parser: argparse.ArgumentParser, *, budgets: str, samplers: str, models: str) -> None:
    """The options every experiment bench shares, with that bench's defaults."""
    parser.add_argument("--budgets", default=budgets, help="user budgets: 'all', counts, shares like 10%%")
    parser.add_argument("--samplers", default=samplers)
    parser.add_argument("--models", default=models)
    parser.add_argument("--seed", type=int, default=0)


def print_timings(grid: dict) -> None:
    """Seconds per sampler: sampling (incl. the proxy or the distillation), fitting, testing; the
    full-data reference once. Cells copied from the full data carry no ``sample_seconds``."""
    rows = []
    for sampler, cells in next(iter(grid.values())).items():
        sampled = [c for per in grid.values() for c in per[sampler].values() if "sample_seconds" in c]
        rows.append({"sampler": sampler,
                     "sample_s": sum(c["sample_seconds"] for c in cells.values() if "sample_seconds" in c),
                     "fit_s": sum(c["fit_seconds"] for c in sampled), "test_s": sum(c["test_seconds"] for c in sampled)})
    full = [per[sampler]["all"] for per in grid.values()]
    rows.append({"sampler": "(full data)", "sample_s": 0.0, "fit_s": sum(c["fit_seconds"] for c in full),
                 "test_s": sum(c["test_seconds"] for c in full)})
    print(table_markdown(rows, digits=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="paper-split parquet file or interaction log")
    add_grid_options(parser, budgets="50,100,200,500,1000,2000,all", samplers=",".join(SAMPLERS),
                     models="infinite_ae,ease")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--plot", type=Path, default=None)
    args = parser.parse_args()

    start, cpu = time.perf_counter(), os.times()
    split = read_static_split(args.data, seed=args.seed)
    grid = run_grid(split, samplers=names(args.samplers), budgets=names(args.budgets), models=names(args.models),
                    config=ExperimentConfig(), seed=args.seed, log=lambda line: print(line, flush=True))
    total, cpu_seconds = time.perf_counter() - start, sum(os.times()[:2]) - sum(cpu[:2])
    for metric in REPORT_KEYS:
        print(f"\n{metric} (×100), {dataset_label(args.data)}")
        print(table_markdown(pivot_rows(grid, metric)))
    print("\nwhere the time went (s)")
    print_timings(grid)
    print(f"whole bench: {total:.0f} s wall, {cpu_seconds:.0f} s CPU (user + system) of this process")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(grid, indent=2))
    if args.plot:
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        args.plot.write_bytes(plot_sample_efficiency(grid, title=f"Sample efficiency: {dataset_label(args.data)}"))


if __name__ == "__main__":
    main()
