"""MVAE alone on a paper split (Liang 2018 protocol as in Sachdeva et al. 2022, Table 1).

Train on the split's train rows, early-stop on nDCG@100 of ranking the validation items from the
train context, then rank the test items from the train+val context (context items excluded).

    .venv/bin/python bench/mvae.py --data ../shared/data/paper-splits/ml-1m.parquet [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from models.configs import MVAEConfig
from models.metrics import evaluate
from models.mvae import predict_scores, train_mvae
from storage.paper_splits import read_paper_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=200, help="Liang et al.'s protocol (the pipeline: 100)")
    parser.add_argument("--patience", type=int, default=20, help="Liang et al.'s protocol (the pipeline: 10)")
    parser.add_argument("--lr", type=float, default=1e-3, help="Liang et al.'s protocol (the pipeline: 3e-3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (1 is fastest on a shared, busy machine)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    split = read_paper_split(args.data)
    config = MVAEConfig(epochs=args.epochs, patience=args.patience, lr=args.lr, device=args.device)
    start = time.perf_counter()
    state = train_mvae(split.train, config=config, seed=args.seed, validation=(split.val_context, split.val),
                       progress=lambda e, loss, v: print(f"epoch {e:3d} loss {loss:8.2f} val nDCG@100 {v:.4f}",
                                                         flush=True))
    train_seconds = time.perf_counter() - start
    scores = predict_scores(state, split.test_context, device=args.device)
    counts = np.asarray(split.train.sum(axis=0)).ravel()
    metrics = evaluate(scores, split.test, ks=(10, 100), item_counts=counts, seed=args.seed)
    result = {"dataset": args.data.name, **{k: float(v) for k, v in metrics.items()},
              "best_epoch": state.best_epoch, "train_seconds": train_seconds}
    print(f"{'metric':<12}{'value':>10}")
    for key, value in result.items():
        print(f"{key:<12}{value:>10.4f}" if isinstance(value, float) else f"{key:<12}{value!s:>10}")
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
