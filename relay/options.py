"""Options every command shares, validated while the command line is parsed.

A bad dataset name or catalog path is a usage error (one line, exit code 2) before anything
starts: no Prefect server, no catalog file, no folder under the storage root.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from storage.catalog import check_catalog_path
from storage.layout import NAME_RULE, check_name


def _dataset(value: str) -> str:
    try:
        return check_name(value)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error


def _catalog(value: Path) -> Path:
    try:
        return check_catalog_path(value)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error


DbOption = Annotated[
    Path, typer.Option("--db", envvar="RELAY_DB", callback=_catalog, help="DuckDB catalog file")
]
DatasetOption = Annotated[str, typer.Option("--dataset", callback=_dataset, help=f"Dataset name ({NAME_RULE})")]
RootOption = Annotated[
    Path, typer.Option("--storage-root", envvar="RELAY_STORAGE_ROOT", help="Folder for inputs, summaries, states")
]
