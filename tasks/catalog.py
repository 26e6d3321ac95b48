"""Catalog tasks: the only code that opens the DuckDB catalog, run by the parent flow process.

Each task opens its own connection for the duration of one storage call (DuckDB allows one writing
process; remote workers never come here). Reads and writes are retried with backoff because the
file can be briefly locked by another local process (a CLI command, a second flow); writes replace
by key, so a retry or a re-run never duplicates rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl
from prefect import task
from prefect.cache_policies import NO_CACHE

from models.strategies import Source, get_strategy
from storage import catalog, ingest, matrices, periods, readers, results, summaries
from storage.arrays import file_sha256, read_arrays, read_json, write_arrays
from storage.errors import IngestError
from storage.layout import Layout, meta_path
from tasks.policy import IO_TASK


@dataclass(frozen=True)
class FileRef:
    """A file under the storage root and the SHA-256 of its content."""

    path: str
    sha: str


@dataclass(frozen=True)
class PeriodTodo:
    """The steps of period t that are not recorded yet (see :meth:`DoneWork.todo`): its summary,
    the evaluations of M_{t-1} on t, the training of M_t, and the evaluations of M_t on earlier
    periods (strategy → periods) that measure forgetting."""

    distill: bool
    evaluate: tuple[str, ...]
    train: tuple[str, ...]
    remember: tuple[tuple[str, tuple[int, ...]], ...] = ()

    def __bool__(self) -> bool:
        return self.distill or bool(self.evaluate or self.train or self.remember)


@dataclass(frozen=True)
class DoneWork:
    """Work recorded in the catalog: summarised periods, (strategy, period) models and
    (strategy, trained_through, evaluated_on) evaluations."""

    summaries: frozenset[int]
    models: frozenset[tuple[str, int]]
    evaluations: frozenset[tuple[str, int, int]]

    def todo(self, period: int, strategies: list[str], *, force: bool = False, window: int = 0) -> PeriodTodo:
        """What period ``period`` still needs: its summary, the evaluations of every M_{t-1} on
        it, every strategy's M_t, and the evaluations of M_t on the ``window`` periods up to t.
        With ``force`` everything is redone."""
        earlier = range(max(0, period - window + 1), period + 1) if window > 0 else range(0)
        return PeriodTodo(
            distill=force or period not in self.summaries,
            evaluate=tuple(s for s in strategies if period > 0 and (force or (s, period - 1, period)
                                                                    not in self.evaluations)),
            train=tuple(s for s in strategies if force or (s, period) not in self.models),
            remember=tuple((s, missing) for s in strategies if (missing := tuple(
                j for j in earlier if force or (s, period, j) not in self.evaluations))),
        )


@contextmanager
def open_catalog(db: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """A catalog connection that is closed when the block ends (one storage call per task)."""
    con = catalog.connect(db)
    try:
        yield con
    finally:
        con.close()


@dataclass(frozen=True)
class DataFile:
    """A file to ingest; ``listed`` when it was found in a folder rather than named itself."""

    path: str
    listed: bool = False


@task(name="list-data-files", cache_policy=NO_CACHE)
def list_data_files(sources: list[str]) -> list[DataFile]:
    """Expand files and folders (their data files, ``.csv.gz`` etc. included, sorted by name)."""
    out: list[DataFile] = []
    for source in sources:
        path = Path(source)
        if path.is_dir():
            out += [DataFile(str(p), listed=True) for p in sorted(path.iterdir())
                    if p.is_file() and readers.is_data_file(p)]
        elif path.is_file():
            out.append(DataFile(str(path)))
        else:
            raise FileNotFoundError(f"data source {source!r} is neither a file nor a folder")
    return out


@task(name="ingest-file", **IO_TASK)
def ingest_file(db: str, path: str, *, dataset: str, skip_unusable: bool = False) -> ingest.IngestReport:
    """Ingest one log file (a file already ingested, same SHA-256, is skipped by storage).

    With ``skip_unusable`` a file that cannot be ingested at all (empty, header only, no user/item/
    time columns, unreadable) is skipped: the report says why (``problem``) and nothing is written.
    """
    with open_catalog(db) as con:
        try:
            return ingest.ingest_file(con, path, dataset=dataset)
        except IngestError as error:
            if not skip_unusable:
                raise
            return ingest.IngestReport.unusable(path, dataset=dataset, problem=str(error))


@task(name="cut-periods", **IO_TASK)
def cut_periods(db: str, *, dataset: str, policy: str | None, reset: bool = False) -> pl.DataFrame:
    """Cut or extend the period table with ``policy`` (None: the dataset's current policy);
    closes periods whose end has passed."""
    with open_catalog(db) as con:
        policy = policy or periods.current_policy(con, dataset=dataset)
        if policy is None:
            raise ValueError(periods.missing_policy_message(con, dataset=dataset))
        return periods.cut_periods(con, dataset=dataset, policy=policy, reset=reset)


@task(name="list-periods", **IO_TASK)
def list_periods(db: str, *, dataset: str) -> pl.DataFrame:
    """The period table (period, start_ts, end_ts, n_interactions, status)."""
    with open_catalog(db) as con:
        return periods.list_periods(con, dataset=dataset)


def metrics_frame(db: str, *, dataset: str) -> pl.DataFrame:
    """All recorded metrics of ``dataset`` (one row per strategy, periods, metric, k)."""
    with open_catalog(db) as con:
        return results.read_metrics(con, dataset=dataset)


def models_frame(db: str, *, dataset: str) -> pl.DataFrame:
    """Every registered model of ``dataset`` and what its training replayed (one row per strategy, period)."""
    with open_catalog(db) as con:
        return results.read_models(con, dataset=dataset)


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
def export_period_rows(db: str, storage_root: str, *, dataset: str, period: int) -> FileRef:
    """Write period ``period``'s (user, period) bags to an array file for a remote worker."""
    with open_catalog(db) as con:
        pm = matrices.period_matrix(con, dataset=dataset, period=period)
    path = Layout(Path(storage_root), dataset).period_rows(period)
    return FileRef(str(path), write_arrays(path, {"rows": pm.matrix}))


@task(name="export-train-inputs", **IO_TASK)
def export_train_inputs(db: str, storage_root: str, *, dataset: str, period: int, strategy: str) -> FileRef:
    """Write what ``strategy`` trains on at ``period`` to one array file.

    Always the current rows and the item mask (items seen through ``period``); plus what the
    strategy declares it needs (:class:`models.strategies.Source`): the rows of every earlier
    period, the stacked summaries S_0..S_{t-1}, or the sizes of S_0..S_t. What a strategy carries from period to period
    (ADER's exemplars) travels inside its previous state file.
    """
    needs = get_strategy(strategy).needs
    with open_catalog(db) as con:
        arrays = {
            "current": matrices.period_matrix(con, dataset=dataset, period=period).matrix,
            "item_mask": matrices.items_seen_through(con, dataset=dataset, period=period),
        }
        if Source.HISTORY in needs and period > 0:
            arrays["history"] = matrices.periods_matrix(con, dataset=dataset, first=0, last=period - 1).matrix
        if Source.SUMMARIES in needs and period > 0:
            arrays["summaries"] = summaries.read_summaries(
                con, dataset=dataset, through_period=period - 1, n_items=int(arrays["item_mask"].shape[0])
            )
        if Source.SUMMARY_SIZES in needs:
            arrays["summary_sizes"] = summaries.summary_sizes(con, dataset=dataset, through_period=period)
    path = Layout(Path(storage_root), dataset).train_inputs(strategy, period)
    return FileRef(str(path), write_arrays(path, arrays))


@task(name="record-summary", **IO_TASK)
def record_summary(db: str, *, dataset: str, period: int, summary_path: str) -> None:
    """Record a distilled summary (file written by a worker) in the catalog, replacing the period's.

    The run id stored is that of the flow run that wrote the file (from its meta JSON)."""
    meta = read_json(meta_path(Path(summary_path)))
    summary = read_arrays(summary_path)["summary"]
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
    """Register the state file of M_period^strategy (replacing an earlier registration) with what
    its training replayed, read from the meta JSON beside it."""
    meta = read_json(meta_path(Path(path)))
    with open_catalog(db) as con:
        results.register_model(con, dataset=dataset, strategy=strategy, period=period, path=path,
                               rows_replayed=meta["rows_replayed"], interactions_replayed=meta["interactions_replayed"],
                               mass_replayed=meta["mass_replayed"])


@task(name="find-model", **IO_TASK)
def find_model(db: str, *, dataset: str, strategy: str, period: int) -> FileRef | None:
    """The registered state file of M_period^strategy and its SHA-256, or None."""
    with open_catalog(db) as con:
        path = results.model_path(con, dataset=dataset, strategy=strategy, period=period)
    return None if path is None else FileRef(path, file_sha256(path))
