"""Ingest new log files and cut/close periods."""

from __future__ import annotations

from prefect import flow

from flows.params import DEFAULT_DB, CatalogPath, DatasetName
from tasks.catalog import cut_periods, ingest_file, list_data_files


@flow(name="ingest", log_prints=True)
def ingest_flow(
    dataset: DatasetName,
    data: list[str] | None = None,
    policy: str | None = None,
    reset: bool = False,
    db: CatalogPath = DEFAULT_DB,
) -> list[int]:
    """Ingest every new file of ``data``, cut the periods, return the finished ones in order.

    Args:
        dataset: the dataset the rows belong to.
        data: files or folders (their .csv/.tsv/.parquet/.dat/.inter files); a file already
            ingested (same SHA-256) is skipped.
        policy: period policy, 'equal-count:N' or 'calendar:day|week|month[,grace=2d]'; empty
            keeps the dataset's current one.
        reset: allow a policy change that drops finished periods and their results.
        db: the DuckDB catalog file.
    """
    for path in list_data_files(data or []):
        report = ingest_file(db, path, dataset=dataset)
        print(
            f"{path}: {'skipped (already ingested)' if report.skipped else 'ingested'}, "
            f"{report.rows_ok} ok, {report.rows_rejected} rejected, "
            f"{report.rows_duplicate} duplicate"
        )
    table = cut_periods(db, dataset=dataset, policy=policy, reset=reset)
    return sorted(int(p) for p, s in table.select("period", "status").rows() if s == "finished")
