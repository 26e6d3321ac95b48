"""Benchmark: ranking retention of the samplers (WSDM 2022 sampling paper, §5), no Prefect.

    .venv/bin/python bench/retention.py --data ../shared/data/ml-100k/ml-100k.inter \\
        --data data/ml-latest-small/ratings.csv --data ../shared/data/paper-splits/ml-1m.parquet \\
        --data ../shared/data/paper-splits/magazine.parquet --synthetic --json bench/out/retention.json

For every data set, sampler and budget (shares of the users; interaction samplers keep the same
share of the interactions), train ∞-AE, EASE, MVAE and item popularity on the sample and on the
full data, and measure Kendall's τ between the two orders of the models (per metric: HR@10,
PSP@10, nDCG@10; then averaged). Data sets without a published split are split per user 80/10/10
with the seed. ``--synthetic`` adds a family of seeded synthetic logs of varied density and
popularity skew (written as CSV next to the JSON). The JSON maps data set → {grid, retention,
statistics, shares}; ``bench/datagenie.py`` reads it.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from models.configs import ExperimentConfig
from models.datagenie import dataset_statistics
from models.experiments import budget_share, retention, run_grid
from models.recommenders import RECOMMENDERS
from models.samplers import SELECTORS
from sample_efficiency import add_grid_options, names  # a sibling bench script (bench/ is on sys.path)
from storage.static_splits import dataset_label, read_static_split
from storage.synthetic import write_synthetic_csv
from tasks.experiment_report import retention_rows, table_markdown

SYNTHETIC = {
    "sparse-flat": {"n_users": 1500, "n_items": 2000, "n_interactions": 30_000, "zipf_a": 0.5, "seed": 11},
    "sparse-skewed": {"n_users": 1500, "n_items": 2000, "n_interactions": 30_000, "zipf_a": 1.3, "seed": 12},
    "mid-flat": {"n_users": 1000, "n_items": 1000, "n_interactions": 50_000, "zipf_a": 0.7, "seed": 13},
    "mid-skewed": {"n_users": 1000, "n_items": 1000, "n_interactions": 50_000, "zipf_a": 1.1, "seed": 14},
    "dense-flat": {"n_users": 600, "n_items": 500, "n_interactions": 60_000, "zipf_a": 0.5, "seed": 15},
    "dense-skewed": {"n_users": 600, "n_items": 500, "n_interactions": 60_000, "zipf_a": 1.3, "seed": 16},
}
"""Synthetic logs (``storage.synthetic``): densities 1%, 5%, 20% of the catalogue per user on
average, each with a flat and a skewed item popularity (Zipf exponent)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, action="append", default=[], help="data file (repeat)")
    parser.add_argument("--synthetic", action="store_true", help="add the synthetic family")
    add_grid_options(parser, budgets="5%,10%,25%,50%", samplers=",".join(SELECTORS),
                     models=",".join(RECOMMENDERS))
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args()

    files = list(args.data)
    if args.synthetic:
        folder = args.json.parent / "synthetic"
        files += [write_synthetic_csv(folder / f"{name}.csv", **kwargs) for name, kwargs in SYNTHETIC.items()]
    budgets, out = names(args.budgets), {}
    if args.json.exists():  # resume: data sets already measured with these settings are kept
        out = json.loads(args.json.read_text())
    for path in files:
        name = dataset_label(path)
        if name in out and list(out[name]["shares"]) == budgets:
            print(f"{name}: already measured", flush=True)
            continue
        start = time.perf_counter()
        split = read_static_split(path, seed=args.seed)
        grid = run_grid(split, samplers=names(args.samplers), budgets=budgets, models=names(args.models),
                        config=ExperimentConfig(), seed=args.seed, log=lambda line: print(f"{name}: {line}", flush=True))
        out[name] = {"grid": grid, "retention": retention(grid), "statistics": dataset_statistics(split.train),
                     "shares": {label: budget_share(label, split.train) for label in budgets},
                     "seconds": time.perf_counter() - start}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2))
        print(f"{name}: {out[name]['seconds']:.0f} s", flush=True)
    print(table_markdown(retention_rows({n: d["retention"] for n, d in out.items()})))


if __name__ == "__main__":
    main()
