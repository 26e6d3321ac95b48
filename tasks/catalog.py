"""Catalog tasks: the only code that opens the DuckDB catalog, run by the parent flow process.

Each task opens its own connection for the duration of one storage call (DuckDB allows one writing
process; remote workers never come here). Reads and writes are retried with backoff because the
file can be briefly locked by another local process (a CLI command, a second flow); writes replace
by key, so a retry or a re-run never duplicates rows.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import duckdb
import polars as pl
from prefect import task
from prefect.cache_policies import NO_CACHE

from storage import catalog, ingest, matrices, periods, results, summaries
from tasks.files import (
    csr_arrays,
    csr_from,
    file_sha256,
    read_arrays,
    read_json,
    write_arrays,
)
from tasks.policy import IO_TASK

DATA_SUFFIXES = (".csv", ".parquet", ".tsv", ".dat")


@dataclass(frozen=True)
class FileRef:
    """A file under the storage root and the SHA-256 of its content."""

    path: str
    sha: str


@dataclass(frozen=True)
class DoneWork:
    """Work recorded in the catalog: summarised periods, (strategy, period) models and
    (strategy, trained_through, evaluated_on) evaluations."""

    summaries: frozenset[int]
    models: frozenset[tuple[str, int]]
    evaluations: frozenset[tuple[str, int, int]]


@contextmanager
def open_catalog(db: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """A catalog connection that is closed when the block ends (one storage call per task)."""
    con = catalog.connect(db)
    try:
        yield con
    finally:
        con.close()


@task(name="list-data-files", cache_policy=NO_CACHE)
def list_data_files(sources: list[str]) -> list[str]:
    """Expand files and folders (their data files, sorted by name) into a list of file paths."""
    out: list[str] = []
    for source in sources:
        path = Path(source)
        if path.is_dir():
            out += sorted(str(p) for p in path.iterdir() if p.suffix in DATA_SUFFIXES)
        elif path.is_file():
            out.append(str(path))
        else:
            raise FileNotFoundError(f"data source {source!r} is neither a file nor a folder")
    return out


@task(name="ingest-file", **IO_TASK)
def ingest_file(db: str, path: str, *, dataset: str) -> ingest.IngestReport:
    """Ingest one log file (a file already ingested, same SHA-256, is skipped by storage)."""
    with open_catalog(db) as con:
        return ingest.ingest_file(con, path, dataset=dataset)


@task(name="cut-periods", **IO_TASK)
def cut_periods(db: str, *, dataset: str, policy: str) -> pl.DataFrame:
    """Cut or extend the period table; closes periods whose end has passed."""
    with open_catalog(db) as con:
        return periods.cut_periods(con, dataset=dataset, policy=policy)


@task(name="list-periods", **IO_TASK)
def list_periods(db: str, *, dataset: str) -> pl.DataFrame:
    """The period table (period, start_ts, end_ts, n_interactions, status)."""
    with open_catalog(db) as con:
        return periods.list_periods(con, dataset=dataset)


def metrics_frame(db: str, *, dataset: str) -> pl.DataFrame:
    """All recorded metrics of ``dataset`` (one row per strategy, periods, metric, k)."""
    with open_catalog(db) as con:
        return results.read_metrics(con, dataset=dataset)


@task(name="read-done-work", **IO_TASK)
def read_done_work(db: str, *, dataset: str, periods: list[int], strategies: list[str]) -> DoneWork:
    """What the catalog already holds for ``periods``: summaries, models and evaluations."""
    with open_catalog(db) as con:
        evaluated = (
            results.read_metrics(con, dataset=dataset)
            .select("strategy", "trained_through", "evaluated_on")
            .unique()
            .rows()
        )
        models = {
            (s, p)
            for s in strategies
            for p in periods
            if results.model_path(con, dataset=dataset, strategy=s, period=p) is not None
        }
        summarised = set(summaries.summarised_periods(con, dataset=dataset))
    return DoneWork(
        summaries=frozenset(p for p in periods if p in summarised),
        models=frozenset(models),
        evaluations=frozenset((s, int(t), int(e)) for s, t, e in evaluated),
    )


@task(name="export-period-rows", **IO_TASK)
def export_period_rows(db: str, root: str, *, dataset: str, period: int) -> FileRef:
    """Write period ``period``'s (user, period) bags to an array file for a remote worker."""
    with open_catalog(db) as con:
        pm = matrices.period_matrix(con, dataset=dataset, period=period)
    path = Path(root) / dataset / "inputs" / f"rows-{period:04d}.arrays"
    return FileRef(str(path), write_arrays(path, csr_arrays(pm.matrix, prefix="rows")))


@task(name="export-train-inputs", **IO_TASK)
def export_train_inputs(db: str, root: str, *, dataset: str, period: int, strategy: str) -> FileRef:
    """Write what ``strategy`` trains on at ``period`` to one array file (DESIGN.md §3).

    Always the current rows and the item mask (items seen through ``period``); plus the rows of
    all earlier periods for ``joint`` and the stacked summaries S_0..S_{t-1} for ``distill_cf``.
    ADER's exemplars travel inside the previous strategy state.
    """
    with open_catalog(db) as con:
        arrays = csr_arrays(
            matrices.period_matrix(con, dataset=dataset, period=period).matrix, prefix="current"
        )
        arrays["item_mask"] = matrices.items_seen_through(con, dataset=dataset, period=period)
        n_items = int(arrays["item_mask"].shape[0])
        if strategy == "joint" and period > 0:
            past = matrices.periods_matrix(con, dataset=dataset, first=0, last=period - 1)
            arrays |= csr_arrays(past.matrix, prefix="past")
        if strategy == "distill_cf" and period > 0:
            fake = summaries.read_summaries(
                con, dataset=dataset, through_period=period - 1, n_items=n_items
            )
            arrays |= csr_arrays(fake, prefix="summaries")
    path = Path(root) / dataset / "inputs" / f"train-{strategy}-{period:04d}.arrays"
    return FileRef(str(path), write_arrays(path, arrays))


@task(name="record-summary", **IO_TASK)
def record_summary(db: str, *, dataset: str, period: int, summary_path: str) -> None:
    """Record a distilled summary (file written by a worker) in the catalog, replacing the period's.

    The run id stored is that of the flow run that wrote the file (from its meta JSON)."""
    meta = read_json(summary_path + ".json")
    summary = csr_from(read_arrays(summary_path), prefix="summary")
    with open_catalog(db) as con:
        summaries.write_summary(
            con,
            dataset=dataset,
            period=period,
            run_id=meta["run_id"],
            summary=summary,
            params=meta["params"],
            seed=meta["seed"],
            loss=meta["loss"],
            density=meta["density"],
            seconds=meta["seconds"],
        )


@task(name="record-model", **IO_TASK)
def record_model(db: str, *, dataset: str, strategy: str, period: int, path: str) -> None:
    """Register the state file of M_period^strategy, replacing an earlier registration."""
    with open_catalog(db) as con:
        results.register_model(con, dataset=dataset, strategy=strategy, period=period, path=path)


@task(name="find-model", **IO_TASK)
def find_model(db: str, *, dataset: str, strategy: str, period: int) -> FileRef | None:
    """The registered state file of M_period^strategy and its SHA-256, or None."""
    with open_catalog(db) as con:
        path = results.model_path(con, dataset=dataset, strategy=strategy, period=period)
    return None if path is None else FileRef(path, file_sha256(path))
