"""How a ``relay`` command hosts Prefect in its own process.

* **The temporary server dies with the command.** Without ``PREFECT_API_URL``, Prefect starts a
  temporary API server (uvicorn) as a child process and stops it at exit; a command killed with
  SIGKILL never gets there and the server would live on under PID 1. Each temporary server here
  gets a watchdog process that holds the read end of a pipe whose write end only this process
  has: when this process dies, however it dies, the watchdog reads end-of-file and stops the
  server (SIGTERM, then SIGKILL after 5 s). It is Prefect's own server class with one hook: the
  watchdog starts right after the server process.
* **Without ``--debug``, Prefect's console log prints no tracebacks.** Failed tasks and flows
  still log their one-line messages; the command itself ends with one ``error:`` line.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from typing import Any

_WATCHDOG = """
import sys
import psutil
pid, started = int(sys.argv[1]), float(sys.argv[2])
sys.stdin.buffer.read()  # returns at end-of-file: the command has exited or died
try:
    server = psutil.Process(pid)
    if server.create_time() == started:
        server.terminate()
        try:
            server.wait(5)
        except psutil.TimeoutExpired:
            server.kill()
except psutil.NoSuchProcess:
    pass
"""


def tie_temporary_server_to_this_process() -> None:
    """Make the temporary Prefect server this process may start stop when this process dies.

    A no-op when a Prefect server is configured (``PREFECT_API_URL``) or a temporary server
    already exists in this process.
    """
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():
        return
    from prefect.server.api.server import SubprocessASGIServer

    class WatchedServer(SubprocessASGIServer):
        """Prefect's temporary server, plus a watchdog that stops it when this process dies."""

        def _run_uvicorn_command(self) -> subprocess.Popen[Any]:
            server = super()._run_uvicorn_command()
            self.watchdog = _start_watchdog(server.pid)
            return server

        def stop(self) -> None:
            super().stop()
            watchdog = getattr(self, "watchdog", None)
            if watchdog is not None:
                watchdog.stdin.close()
                watchdog.wait()
                self.watchdog = None

    WatchedServer()  # the per-port instance Prefect's own calls get from now on


def _start_watchdog(pid: int) -> subprocess.Popen[bytes]:
    import psutil

    return subprocess.Popen(
        [sys.executable, "-c", _WATCHDOG, str(pid), repr(psutil.Process(pid).create_time())],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )


class _DropTraceback(logging.Filter):
    """Keeps a record's message, drops its traceback and stack (console output only)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


def _prefect_console_handlers() -> list[Any]:
    from prefect.logging.configuration import ensure_logging_setup
    from prefect.logging.handlers import PrefectConsoleHandler

    ensure_logging_setup()
    return [h for h in logging.getLogger().handlers if isinstance(h, PrefectConsoleHandler)]


def hide_tracebacks_in_prefect_console() -> None:
    """Attach :class:`_DropTraceback` to Prefect's console handler (once)."""
    for handler in _prefect_console_handlers():
        if not any(isinstance(f, _DropTraceback) for f in handler.filters):
            handler.addFilter(_DropTraceback())


def prefect_console() -> Any:
    """The rich console Prefect's log lines are printed on (None when its console handler is off),
    so a live display drawn on it keeps the log lines above it."""
    handlers = _prefect_console_handlers()
    return handlers[0].console if handlers else None
