"""Data commands: ``relay ingest``, ``relay forget``, ``relay periods``, ``relay stats``.

Thin wrappers over :mod:`storage`. Errors a user can fix (bad file, bad policy, bad option) print
one line on stderr and exit with code 2 (:class:`relay.cli.OneLineErrors`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any

import duckdb
import polars as pl
import typer

from relay.options import DatasetOption, DbOption
from storage import catalog, forget, ingest, periods, readers
from storage.errors import StorageError
from storage.layout import DEFAULT_DB

_DEFAULT_FLOOR = datetime.fromtimestamp(ingest.DEFAULT_TS_FLOOR, tz=timezone.utc).date().isoformat()


def register(app: typer.Typer) -> None:
    """Add the data commands to ``app``."""
    app.command("ingest")(ingest_command)
    app.command("forget")(forget_command)
    app.command("periods")(periods_command)
    app.command("stats")(stats_command)


def parse_floor(text: str) -> int:
    """``--ts-floor``: an ISO date or date-time (UTC unless it has an offset) or unix seconds."""
    text = text.strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as error:
        raise typer.BadParameter(f"{text!r} is not a date (YYYY-MM-DD) or unix seconds", param_hint="--ts-floor") from error
    return int((moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp())


def parse_columns(text: str | None) -> dict[str, str] | None:
    """``"user=userId,item=movieId,ts=timestamp"`` -> role mapping (roles user/item/rating/ts)."""
    if not text:
        return None
    mapping: dict[str, str] = {}
    for part in text.split(","):
        role, sep, name = part.partition("=")
        role, name = role.strip(), name.strip()
        if not sep or not name or role not in readers.ROLES:
            raise typer.BadParameter(
                f"{part!r} is not ROLE=COLUMN with ROLE one of {', '.join(readers.ROLES)}",
                param_hint="--columns",
            )
        mapping[role] = name
    return mapping


def ingest_command(
    path: Annotated[Path, typer.Argument(help="Interaction file to ingest (CSV/TSV may be .gz or .zst)")],
    dataset: DatasetOption,
    fmt: Annotated[str, typer.Option("--format", help="auto|csv|tsv|parquet|movielens|recbole")] = "auto",
    columns: Annotated[
        str | None, typer.Option("--columns", help="Column mapping, e.g. user=uid,item=iid,rating=r,ts=t")
    ] = None,
    ts_floor: Annotated[
        str, typer.Option("--ts-floor", help="Reject timestamps before this date (YYYY-MM-DD, UTC) or unix time")
    ] = _DEFAULT_FLOOR,
    db: DbOption = Path(DEFAULT_DB),
) -> None:
    """Ingest an interaction file: good rows land once, bad rows go to rejected_rows."""
    mapping = parse_columns(columns)
    floor = parse_floor(ts_floor)
    with _catalog(db) as con:
        report = ingest.ingest_file(con, path, dataset=dataset, fmt=fmt, columns=mapping, ts_floor=floor)
        counts = _counts(con, dataset)
    reasons = ", ".join(f"{k}: {v}" for k, v in report.reasons.items()) or "none"
    if report.skipped:
        typer.echo(f"{path}: already ingested (same sha256), nothing to do")
    typer.echo(f"ingested {report.rows_ok}, rejected {report.rows_rejected} (reasons: {reasons})")
    if report.rows_duplicate or report.rows_conflicting or report.rows_late:
        typer.echo(
            f"duplicates {report.rows_duplicate}, conflicting duplicates {report.rows_conflicting} "
            f"(another rating; the first one is kept), late rows {report.rows_late} (finished periods)"
        )
    if report.rows_beyond_horizon:
        typer.echo(
            f"{report.rows_beyond_horizon} rows lie beyond the watermark horizon (after "
            f"{_iso(counts['watermark_limit'])}): stored, but they close no period"
        )
    typer.echo(
        f"dataset {dataset}: {counts['interactions']:,} interactions, {counts['users']:,} users, "
        f"{counts['items']:,} items"
    )


def forget_command(
    dataset: DatasetOption,
    file: Annotated[str, typer.Option("--file", help="Path or SHA-256 (or its first 8+ digits) of an ingested file")],
    db: DbOption = Path(DEFAULT_DB),
) -> None:
    """Remove one ingested file's rows (refused if any lies in a finished period); it can then be
    ingested again, e.g. with another --columns mapping."""
    with _catalog(db) as con:
        report = forget.forget_file(con, dataset=dataset, file=file)
    removed = ", ".join(f"{n:,} {table.replace('_', ' ')}" for table, n in report.removed.items())
    typer.echo(f"forgot {report.path} (sha256 {report.sha256[:12]}) from {dataset}: removed {removed}")
    if report.readmitted:
        typer.echo(f"re-admitted {report.readmitted:,} rows that other ingested files also contained")


def periods_command(
    dataset: DatasetOption,
    policy: Annotated[
        str | None, typer.Option("--policy", help="equal-count:N or calendar:day|week|month[,grace=2d]")
    ] = None,
    reset: Annotated[bool, typer.Option("--reset", help="Drop finished periods to change policy")] = False,
    db: DbOption = Path(DEFAULT_DB),
) -> None:
    """Cut (or refresh) the dataset's periods and print the period table."""
    with _catalog(db) as con:
        if policy is None:
            if reset:
                raise typer.BadParameter("--reset needs --policy", param_hint="--reset")
            table = periods.list_periods(con, dataset=dataset)
        else:
            impact = periods.reset_impact(con, dataset=dataset) if reset else {}
            table = periods.cut_periods(con, dataset=dataset, policy=policy, reset=reset)
            if reset:
                typer.echo(f"reset {dataset}: dropped {periods.describe_impact(impact)}")
        current = periods.current_policy(con, dataset=dataset)
    typer.echo(f"dataset {dataset}, policy {current or 'none'}")
    typer.echo(format_periods(table))


def stats_command(
    dataset: DatasetOption,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")] = False,
    db: DbOption = Path(DEFAULT_DB),
) -> None:
    """Print counts of interactions, users, items, rejected and late rows, and the period table."""
    with _catalog(db, read_only=True) as con:
        counts = _counts(con, dataset)
        if not any(counts.values()):
            raise StorageError(f"dataset {dataset!r} not found in the catalog")
        table = periods.list_periods(con, dataset=dataset)
        counts["policy"] = periods.current_policy(con, dataset=dataset)
    if as_json:
        typer.echo(json.dumps({"dataset": dataset, **counts, "periods": table.to_dicts()}, indent=2))
        return
    for key, value in counts.items():
        shown = _iso(value) if key.startswith("watermark") and value is not None else value
        typer.echo(f"{key:<16} {shown if shown is not None else '-'}")
    typer.echo(format_periods(table))


def format_periods(table: pl.DataFrame) -> str:
    """Fixed-width text of a period table (timestamps also shown as UTC ISO dates)."""
    if table.is_empty():
        return "(no periods: cut them with relay periods --policy …)"
    header = f"{'period':>6}  {'start (UTC)':<19}  {'end (UTC)':<19}  {'interactions':>12}  status"
    lines = [header, "-" * len(header)]
    for row in table.iter_rows(named=True):
        lines.append(
            f"{row['period']:>6}  {_iso(row['start_ts']):<19}  {_iso(row['end_ts']):<19}  "
            f"{row['n_interactions']:>12,}  {row['status']}"
        )
    lines.append(f"{len(table)} periods, {int(table['n_interactions'].sum()):,} interactions")
    return "\n".join(lines)


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _counts(con: duckdb.DuckDBPyConnection, dataset: str) -> dict[str, Any]:
    tables = ("interactions", "users", "items", "rejected_rows", "duplicate_rows", "late_rows", "ingested_files")
    counts = {
        table: int(con.execute(f"SELECT count(*) FROM {table} WHERE dataset = ?", [dataset]).fetchall()[0][0])
        for table in tables
    }
    counts["conflicting_rows"] = int(con.execute(
        "SELECT count(*) FROM duplicate_rows WHERE dataset = ? AND conflict", [dataset]
    ).fetchall()[0][0])
    counts["unassigned"] = int(con.execute(
        "SELECT count(*) FROM interactions WHERE dataset = ? AND period IS NULL", [dataset]
    ).fetchall()[0][0])
    mark = periods.watermark(con, dataset=dataset)
    counts |= {"watermark": mark.ts, "watermark_limit": mark.limit, "beyond_horizon": mark.beyond}
    return counts


@contextmanager
def _catalog(db: Path, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """An open catalog connection for the block, closed afterwards."""
    con = catalog.connect(db, read_only=read_only)
    try:
        yield con
    finally:
        con.close()
