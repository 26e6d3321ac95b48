"""Ingest throughput and memory: time ``storage.ingest.ingest_file`` on a file into a fresh catalog.

Usage (from the repository root):
    .venv/bin/python bench/ingest.py [--data PATH] [--repeat 3] [--json OUT]
    .venv/bin/python bench/ingest.py --generate 1000000 [--repeat 3] [--json OUT]

The first form times the bundled MovieLens CSV (target: >= 200k rows/s). ``--generate N`` writes
an N-row CSV of random interactions (seeded; ids, half-star ratings and unix timestamps like
MovieLens) to a temporary folder and times that (target for 1M rows: >= 300k rows/s with a peak
resident memory of at most 1 GiB).

Each repeat runs in a fresh process on a new catalog file, so every run does the full work (no
SHA-256 skip) and its peak RSS (``ru_maxrss``: the interpreter, DuckDB and the ingest) is its own.
The table shows the best and median wall time and rows/s, the best process CPU time (all DuckDB
threads), the worst peak RSS and the 1-minute load average, since other work on the machine
inflates wall time; ``--json`` writes the same keys.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from storage import catalog
from storage.ingest import ingest_file

DEFAULT_DATA = Path("data/ml-latest-small/ratings.csv")
TARGETS = {"bundled": (200_000, None), "generated": (300_000, 1024.0)}
"""(rows/s, peak RSS MiB) each mode must reach."""


def run_once(data: Path, fmt: str) -> tuple[float, float, int, float]:
    """Wall and process CPU seconds of one fresh ingest (connect excluded; commit and the final
    close, which may checkpoint, included), the number of data rows read and the peak RSS (MiB)."""
    with tempfile.TemporaryDirectory() as folder:
        con = catalog.connect(Path(folder) / "bench.duckdb")
        wall, cpu = time.perf_counter(), time.process_time()
        report = ingest_file(con, data, dataset="bench", fmt=fmt)
        con.close()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return wall, cpu, report.rows_read, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def generate_csv(path: Path, *, rows: int, seed: int = 0) -> Path:
    """A MovieLens-like CSV of ``rows`` random interactions (userId,movieId,rating,timestamp)."""
    rng = np.random.default_rng(seed)
    pl.DataFrame({
        "userId": rng.integers(1, max(2, rows // 150), rows),
        "movieId": rng.integers(1, max(2, rows // 100), rows),
        "rating": rng.integers(1, 11, rows) / 2,
        "timestamp": np.sort(rng.integers(1_104_537_600, 1_704_067_200, rows)),   # 2005-2024
    }).write_csv(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--generate", type=int, default=None, metavar="ROWS",
                        help="time a generated CSV of ROWS rows instead of --data")
    parser.add_argument("--format", default="auto", dest="fmt")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        data = generate_csv(Path(folder) / "generated.csv", rows=args.generate) if args.generate else args.data
        with multiprocessing.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
            runs = [pool.apply(run_once, (data, args.fmt)) for _ in range(args.repeat)]
    seconds = [wall for wall, _, _, _ in runs]
    rows = runs[0][2]
    min_rate, max_rss = TARGETS["generated" if args.generate else "bundled"]
    result = {
        "data": f"generated ({rows:,} rows)" if args.generate else str(args.data), "rows": rows,
        "repeat": args.repeat, "seconds_best": min(seconds), "seconds_median": statistics.median(seconds),
        "rows_per_s_best": rows / min(seconds), "rows_per_s_median": rows / statistics.median(seconds),
        "cpu_seconds_best": min(c for _, c, _, _ in runs), "peak_rss_mib": max(r for _, _, _, r in runs),
        "load_avg_1m": os.getloadavg()[0], "cpu_count": os.cpu_count(),
        "target_rows_per_s": min_rate, "target_peak_rss_mib": max_rss,
    }
    result["target_met"] = result["rows_per_s_best"] >= min_rate and (max_rss is None or result["peak_rss_mib"] <= max_rss)
    width = max(len(k) for k in result)
    for key, value in result.items():
        shown = f"{value:,.3f}" if isinstance(value, float) else (
            f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else value)
        print(f"{key:<{width}}  {shown}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
