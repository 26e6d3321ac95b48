"""Ingest new log files and cut/close periods."""

from __future__ import annotations

from prefect import flow

from flows.params import IngestParams
from relay.config import get_settings
from tasks.catalog import cut_periods, ingest_file, list_data_files


@flow(name="ingest", log_prints=True)
def ingest_flow(params: IngestParams) -> list[int]:
    """Ingest every new file of ``params.data`` (already-ingested files are skipped by hash), then
    cut the period table with ``params.policy``; returns the finished periods, in order."""
    db = str(get_settings().db)
    for path in list_data_files(params.data):
        report = ingest_file(db, path, dataset=params.dataset)
        print(
            f"{path}: {'skipped (already ingested)' if report.skipped else 'ingested'}, "
            f"{report.rows_ok} ok, {report.rows_rejected} rejected, "
            f"{report.rows_duplicate} duplicate"
        )
    table = cut_periods(db, dataset=params.dataset, policy=params.policy)
    return sorted(int(p) for p, s in table.select("period", "status").rows() if s == "finished")
