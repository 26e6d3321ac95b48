"""Benchmark: DATA-GENIE small, leave-one-data-set-out (WSDM 2022 sampling paper, §6).

    .venv/bin/python bench/datagenie.py --retention bench/out/retention.json --json bench/out/datagenie.json

Reads ``bench/retention.py``'s JSON (data set → retention, statistics, budget shares), fits one
ridge regression per sampler from data-set statistics and the budget to Kendall's τ on all data
sets but one, picks the sampler with the highest predicted τ for each budget of the held-out data
set, and scores the picks: right when the picked sampler's measured τ is the best measured τ
(ties count). Baseline: always user random sampling. Prints every pick and the accuracies.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from models.configs import DataGenieConfig
from models.datagenie import leave_one_dataset_out, observations_from
from tasks.experiment_report import table_markdown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--retention", type=Path, required=True, help="bench/retention.py's JSON")
    parser.add_argument("--ridge", type=float, default=DataGenieConfig().ridge)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    measured = json.loads(args.retention.read_text())
    observations = [o for name, d in measured.items()
                    for o in observations_from(name, d["retention"], d["shares"], d["statistics"])]
    result = leave_one_dataset_out(observations, config=DataGenieConfig(ridge=args.ridge))
    print(table_markdown(result["picks"], digits=3))
    print(f"data sets: {len(measured)}, picks: {len(result['picks'])}")
    print(f"accuracy at picking the best sampler: DATA-GENIE {100 * result['accuracy']:.1f}%, "
          f"always user_rns {100 * result['baseline_accuracy']:.1f}%")
    print(f"mean τ of the picked sampler: DATA-GENIE {result['mean_tau_picked']:.3f}, "
          f"user_rns {result['mean_tau_baseline']:.3f}, best possible {result['mean_tau_best']:.3f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
