"""Live progress in the Prefect UI: progress artifacts that long model steps move as they go.

Kept apart from :mod:`tasks.artifacts` (which reads the catalog) so that the remote model flows
import nothing that opens DuckDB.
"""

from __future__ import annotations

import math
import re
import time
from uuid import UUID

from prefect import task
from prefect.artifacts import create_progress_artifact, update_progress_artifact

from tasks.policy import IO_TASK


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
    a fast loop does not flood the server. An early stop leaves the bar short of 100 % until
    :meth:`done` is called.
    """

    def __init__(self, key: str, *, total: int, description: str, every_s: float = 2.0) -> None:
        self.total, self.description, self.every_s = total, description, every_s
        self.artifact_id = create_progress_artifact(progress=0.0, key=key, description=description)
        self._last = -math.inf  # the first update always goes through (monotonic() may be < every_s)

    def __call__(self, steps_done: int, *metrics: float) -> None:
        now = time.monotonic()
        if steps_done >= self.total or now - self._last >= self.every_s:
            self._last = now
            shown = ", ".join(f"{m:.4g}" for m in metrics)
            update_progress_artifact(
                self.artifact_id,
                progress=min(100.0, 100.0 * steps_done / self.total),
                description=f"{self.description}: step {steps_done}/{self.total} ({shown})",
            )

    def done(self) -> None:
        """Mark the work finished (100 %)."""
        update_progress_artifact(
            self.artifact_id, progress=100.0, description=f"{self.description}: done"
        )


@task(name="start-progress", **IO_TASK)
def start_progress(key: str, *, description: str) -> UUID:
    """Create a progress artifact at 0 % and return its id."""
    return create_progress_artifact(progress=0.0, key=key, description=description)


@task(name="set-progress", **IO_TASK)
def set_progress(artifact_id: UUID, *, progress: float, description: str) -> None:
    """Move a progress artifact to ``progress`` % (0-100)."""
    update_progress_artifact(artifact_id, progress=progress, description=description)
