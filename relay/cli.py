"""The ``relay`` command line: thin wrappers over storage functions and Prefect flows.

Data commands (``ingest``, ``periods``, ``stats``) live in :mod:`relay.commands.data`; pipeline
commands (``run``, ``backfill``, ``report``, ``deploy``) in :mod:`relay.commands.pipeline`.
"""

from __future__ import annotations

import typer

from relay.commands import data, pipeline

app = typer.Typer(
    name="relay",
    help="Relay: continual learning for recommenders, orchestrated by Prefect.",
    no_args_is_help=True,
    add_completion=False,
)
data.register(app)
pipeline.register(app)

if __name__ == "__main__":
    app()
