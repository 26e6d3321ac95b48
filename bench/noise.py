"""Benchmark: noise robustness of samplers and models (∞-AE / Distill-CF paper, Figs. 3–4), no Prefect.

    .venv/bin/python bench/noise.py --data ../shared/data/paper-splits/ml-1m.parquet --noise 0,1,2,5 \\
        --budgets 100,500,all --json bench/out/noise-ml-1m.json --plot bench/out/noise-ml-1m.png

For each noise level x %, every user's training row has x % of the item catalogue flipped (seeded);
each sampler samples the noisy rows, EASE and ∞-AE train on the sample, and are tested on the
clean test split (clean contexts). The JSON holds ``grids`` (noise → model → sampler → budget →
metrics) and ``changes`` (the same, as % change against the full clean data); the table lists
HR@10's change per budget, and the paper's two claims are checked at the end.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from models.configs import ExperimentConfig
from models.experiments import FULL, noise_drops, run_full, run_grid
from models.samplers import SAMPLERS
from sample_efficiency import add_grid_options, names  # a sibling bench script (bench/ is on sys.path)
from storage.static_splits import dataset_label, read_static_split
from tasks.experiment_report import plot_noise, table_markdown


def claims(grids: dict, model: str = "ease", metric: str = "hr@10") -> list[str]:
    """The paper's findings, checked: per noise level, the sampler with the best mean change over the
    sampled budgets, and whether the model on a Distill-CF summary beats it on the full noisy data."""
    lines = []
    for noise, grid in grids.items():
        per_sampler = grid[model]
        mean = {s: sum(c[metric] for label, c in cells.items() if label != FULL) / max(len(cells) - 1, 1)
                for s, cells in per_sampler.items()}
        best = max(mean, key=mean.get)
        full = next(iter(per_sampler.values()))[FULL][metric]
        distilled = {label: c[metric] for label, c in per_sampler.get("distill_cf", {}).items() if label != FULL}
        lines.append(f"noise {noise}: best mean {metric} over the budgets: {best} ({mean[best]:.2f}); "
                     f"{model} on full noisy data {full:.2f}; on Distill-CF "
                     + ", ".join(f"{label} users {v:.2f}{' (beats full)' if v > full else ''}"
                                 for label, v in distilled.items()))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="paper-split parquet file or interaction log")
    parser.add_argument("--noise", default="0,1,2,5", help="noise levels in %% of the catalogue per user")
    add_grid_options(parser, budgets="100,500,all", samplers=",".join(SAMPLERS), models="ease,infinite_ae")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--plot", type=Path, default=None)
    args = parser.parse_args()

    start = time.perf_counter()
    split = read_static_split(args.data, seed=args.seed)
    config, models = ExperimentConfig(), names(args.models)
    reference = run_full(split, models=models, config=config, seed=args.seed)
    grids = {}
    for level in (float(v) for v in names(args.noise)):
        print(f"noise {level:g}%", flush=True)
        grids[f"{level:g}%"] = run_grid(split, samplers=names(args.samplers), budgets=names(args.budgets),
                                        models=models, config=config, seed=args.seed, noise=level / 100,
                                        full=reference if level == 0 else None,
                                        log=lambda line: print(line, flush=True))
    changes = noise_drops(grids, reference)
    rows = [{"noise": noise, "model": model, "sampler": sampler} | {label: v["hr@10"] for label, v in cells.items()}
            for noise, per_model in changes.items() for model, per_sampler in per_model.items()
            for sampler, cells in per_sampler.items()]
    print(f"\n% change of HR@10 against the full clean data ({dataset_label(args.data)}; full clean HR@10: "
          + ", ".join(f"{m} {reference[m]['hr@10']:.2f}" for m in models) + ")")
    print(table_markdown(rows))
    for model in models:
        print("\n".join(claims(grids, model=model)))
    print(f"whole bench: {time.perf_counter() - start:.0f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"reference": reference, "grids": grids, "changes": changes}, indent=2))
    if args.plot:
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        args.plot.write_bytes(plot_noise(grids, changes, title=f"Noise robustness: {dataset_label(args.data)}"))


if __name__ == "__main__":
    main()
