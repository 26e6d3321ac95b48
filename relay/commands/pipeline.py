"""Pipeline commands: ``relay run``, ``relay backfill``, ``relay report``, ``relay deploy``."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the pipeline commands to ``app``."""
