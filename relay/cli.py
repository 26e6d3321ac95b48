"""The ``relay`` command line: thin wrappers over storage functions and Prefect flows.

Data commands (``ingest``, ``forget``, ``periods``, ``stats``) live in :mod:`relay.commands.data`;
pipeline commands (``run``, ``backfill``, ``report``, ``deploy``) in :mod:`relay.commands.pipeline`;
the data-centric experiments (``experiment …``) in :mod:`relay.commands.experiment`.

Every error, whichever command raises it, ends as one ``error: …`` line on stderr and exit code 2
(:class:`OneLineErrors`); the global ``--debug`` option shows the traceback instead.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from relay.commands import data, experiment, pipeline

FLOW_COMMANDS = ("run", "backfill", "experiment")
"""Commands that run Prefect flows in this process (they may start a temporary server)."""
_MAX_MESSAGE = 500


def one_line(error: BaseException) -> str:
    """The error as one line: its message's lines joined; the type and a hint for unexpected ones."""
    message = error.format_message() if isinstance(error, typer.TyperException) else str(error)
    text = " ".join(line.strip() for line in message.splitlines() if line.strip())
    if len(text) > _MAX_MESSAGE:
        text = text[:_MAX_MESSAGE] + " …"
    usage = getattr(error, "ctx", None)  # a usage error knows its command
    if isinstance(error, typer.TyperException) and usage is not None:
        return f"{text} (see {usage.command_path} --help)"
    if isinstance(error, typer.TyperException) or _expected(error):
        return text or type(error).__name__
    return f"{type(error).__name__}: {text} (rerun with relay --debug … for the traceback)"


def _expected(error: BaseException) -> bool:
    """Errors that describe a bad input or state in their message; others are bugs."""
    from storage.errors import StorageError

    prefect = sys.modules.get("prefect.exceptions")  # bad flow parameters, when a flow ran
    flow_parameters = (prefect.ParameterTypeError,) if prefect else ()
    device = sys.modules.get("models.device")  # a device asked for by name that is not there
    devices = (device.DeviceUnavailable,) if device else ()
    return (isinstance(error, (StorageError, ValueError, OSError, *flow_parameters, *devices))
            or "duckdb" in type(error).__module__)


class OneLineErrors(TyperGroup):
    """The ``relay`` group: turns every exception into a one-line error and exit code 2."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except Exception as error:
            if ctx.params.get("debug"):
                raise
            raise typer.TyperException(one_line(error)) from error

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.TyperException as error:
            typer.echo(f"error: {one_line(error)}", err=True)
            sys.exit(2)
        except typer.Abort:
            typer.echo("error: interrupted", err=True)
            sys.exit(130)
        sys.exit(result if isinstance(result, int) else 0)


app = typer.Typer(
    name="relay",
    help="Relay: continual learning for recommenders, orchestrated by Prefect.",
    invoke_without_command=True,
    add_completion=False,
    cls=OneLineErrors,
)


@app.callback()
def main(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", envvar="RELAY_DEBUG", help="Show tracebacks")] = False,
) -> None:
    """Relay: continual learning for recommenders, orchestrated by Prefect."""
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(2)
    if ctx.invoked_subcommand in FLOW_COMMANDS:
        from relay.prefect_host import hide_tracebacks_in_prefect_console, tie_temporary_server_to_this_process

        tie_temporary_server_to_this_process()
        if not debug:
            hide_tracebacks_in_prefect_console()


data.register(app)
pipeline.register(app)
experiment.register(app)

if __name__ == "__main__":
    app()
