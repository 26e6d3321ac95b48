"""Ingest throughput: time ``storage.ingest.ingest_file`` on a file into a fresh temp catalog.

Usage (from the repository root):
    .venv/bin/python bench/ingest.py [--data PATH] [--repeat 3] [--json OUT]

Each repeat uses a new catalog file, so every run does the full work (no sha256 skip). The table
shows the best and median wall time and rows/s, the best process CPU time (all DuckDB threads),
and the 1-minute load average, since other work on the machine inflates wall time;
``--json`` writes the same keys.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from storage import catalog
from storage.ingest import ingest_file

DEFAULT_DATA = Path("data/ml-latest-small/ratings.csv")


def run_once(data: Path, *, fmt: str) -> tuple[float, float, int]:
    """Wall and process CPU seconds of one fresh ingest (connect excluded; commit and the final
    close, which may checkpoint, included) and the number of data rows read."""
    with tempfile.TemporaryDirectory() as folder:
        con = catalog.connect(Path(folder) / "bench.duckdb")
        wall, cpu = time.perf_counter(), time.process_time()
        report = ingest_file(con, data, dataset="bench", fmt=fmt)
        con.close()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return wall, cpu, report.rows_ok + report.rows_rejected + report.rows_duplicate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--format", default="auto", dest="fmt")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    runs = [run_once(args.data, fmt=args.fmt) for _ in range(args.repeat)]
    seconds = [wall for wall, _, _ in runs]
    cpu = [c for _, c, _ in runs]
    rows = runs[0][2]
    result = {
        "data": str(args.data), "rows": rows, "repeat": args.repeat,
        "seconds_best": min(seconds), "seconds_median": statistics.median(seconds),
        "rows_per_s_best": rows / min(seconds), "rows_per_s_median": rows / statistics.median(seconds),
        "cpu_seconds_best": min(cpu), "load_avg_1m": os.getloadavg()[0], "cpu_count": os.cpu_count(),
    }
    width = max(len(k) for k in result)
    for key, value in result.items():
        shown = f"{value:,.3f}" if isinstance(value, float) else (
            f"{value:,}" if isinstance(value, int) else value)
        print(f"{key:<{width}}  {shown}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
