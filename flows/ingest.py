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
    """Ingest every new file of the data, cut the periods, return the finished ones in order.

    Args:
        dataset: the dataset the rows belong to.
        data: files or folders (their .csv/.tsv/.parquet/.dat/.inter files, text ones possibly
            .gz/.zst); a file already ingested (same SHA-256) is skipped. A file found in a folder
            that cannot be ingested at all (e.g. header only) is skipped with its reason; a file
            named itself must be ingestible.
        policy: period policy, 'equal-count:N' or 'calendar:day|week|month[,grace=2d][,horizon=90d]';
            empty keeps the dataset's current one.
        reset: allow a policy change that drops finished periods and their results.
        db: the DuckDB catalog file.
    """
    skipped: list[str] = []
    for file in list_data_files(data or []):
        report = ingest_file(db, file.path, dataset=dataset, skip_unusable=file.listed)
        if report.problem:
            skipped.append(report.problem)
            print(f"skipped {report.problem}")
            continue
        print(
            f"{file.path}: {'skipped (already ingested)' if report.skipped else 'ingested'}, "
            f"{report.rows_ok} ok, {report.rows_rejected} rejected, {report.rows_duplicate} duplicate, "
            f"{report.rows_conflicting} conflicting, {report.rows_late} late"
            + (f", {report.rows_beyond_horizon} beyond the watermark horizon" if report.rows_beyond_horizon else "")
        )
    if skipped:
        print(f"{len(skipped)} file(s) could not be ingested and were skipped: {'; '.join(skipped)}")
    table = cut_periods(db, dataset=dataset, policy=policy, reset=reset)
    return sorted(int(p) for p, s in table.select("period", "status").rows() if s == "finished")
