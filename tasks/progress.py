"""Live progress: progress artifacts in the Prefect UI, and events for a console display.

Long model steps move a progress artifact as they go (:class:`ProgressReporter`); a finished one
keeps its last figures. The same steps, and the period steps of the parent flow, also announce
progress events to listeners registered in this process (:func:`listening`): ``relay run`` shows
them as a live console display. Nothing listens in a worker, so there the events cost nothing.

Kept apart from :mod:`tasks.artifacts` (which reads the catalog) so that the remote model flows
import nothing that opens DuckDB.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from uuid import UUID

from prefect import task
from prefect.artifacts import create_progress_artifact, update_progress_artifact

from tasks.policy import IO_TASK


@dataclass(frozen=True)
class RunPlan:
    """The periods a run will process, in order."""

    periods: tuple[int, ...]


@dataclass(frozen=True)
class PeriodStep:
    """Period ``period`` starts ``doing`` (``"done"`` at its end); ``fraction`` of the period's work
    is behind it."""

    period: int
    doing: str
    fraction: float


@dataclass(frozen=True)
class ModelProgress:
    """A model step (one distillation, one strategy's training) did ``done`` of ``total`` steps."""

    key: str
    description: str
    done: int
    total: int
    figures: str
    finished: bool = False


ProgressEvent = RunPlan | PeriodStep | ModelProgress
_LISTENERS: list[Callable[[ProgressEvent], None]] = []
_LOCK = threading.Lock()


@contextmanager
def listening(listener: Callable[[ProgressEvent], None]) -> Iterator[None]:
    """Send every progress event announced in this process to ``listener`` inside the block."""
    with _LOCK:
        _LISTENERS.append(listener)
    try:
        yield
    finally:
        with _LOCK:
            _LISTENERS.remove(listener)


def announce(event: ProgressEvent) -> None:
    """Tell the registered listeners (model steps may announce from several threads at once)."""
    with _LOCK:
        listeners = list(_LISTENERS)
    for listener in listeners:
        listener(event)


def artifact_key(*parts: object) -> str:
    """Join ``parts`` into a valid artifact key: lowercase letters, digits and '-'."""
    text = "-".join(str(p) for p in parts).lower()
    key = re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", text)).strip("-")
    if not key:
        raise ValueError(f"artifact key from {parts!r} is empty")
    return key


class ProgressReporter:
    """A progress callback ``(steps_done, *metrics)`` that moves one progress artifact.

    Updates are throttled to one API call per ``every_s`` seconds (plus the last planned step), so
    a fast loop does not flood the server; listeners in this process hear every call. An early
    stop leaves the bar short of 100 % until :meth:`done` is called, which keeps the last figures.
    """

    def __init__(self, key: str, *, total: int, description: str, every_s: float = 2.0) -> None:
        self.key, self.total, self.description, self.every_s = key, total, description, every_s
        self.artifact_id = create_progress_artifact(progress=0.0, key=key, description=description)
        self._last = -math.inf  # the first update always goes through (monotonic() may be < every_s)
        self._steps, self._figures = 0, ""

    def __call__(self, steps_done: int, *metrics: float) -> None:
        self._steps, self._figures = steps_done, ", ".join(f"{m:.4g}" for m in metrics)
        announce(ModelProgress(self.key, self.description, steps_done, self.total, self._figures))
        now = time.monotonic()
        if steps_done >= self.total or now - self._last >= self.every_s:
            self._last = now
            update_progress_artifact(
                self.artifact_id,
                progress=min(100.0, 100.0 * steps_done / self.total),
                description=f"{self.description}: step {steps_done}/{self.total} ({self._figures})",
            )

    def done(self) -> None:
        """Mark the work finished (100 %), keeping the last step and figures in the description."""
        announce(ModelProgress(self.key, self.description, self._steps, self.total, self._figures, finished=True))
        update_progress_artifact(
            self.artifact_id, progress=100.0,
            description=f"{self.description}: done after step {self._steps}/{self.total} ({self._figures})",
        )


@task(name="start-progress", **IO_TASK)
def start_progress(key: str, *, description: str) -> UUID:
    """Create a progress artifact at 0 % and return its id."""
    return create_progress_artifact(progress=0.0, key=key, description=description)


@task(name="set-progress", **IO_TASK)
def set_progress(artifact_id: UUID, *, progress: float, description: str) -> None:
    """Move a progress artifact to ``progress`` % (0-100)."""
    update_progress_artifact(artifact_id, progress=progress, description=description)
