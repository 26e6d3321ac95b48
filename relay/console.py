"""The live console display of ``relay run``: periods done, the step under way, every model step
that is running (distillation steps, training epochs, their last figures) and the time left.

It listens to the progress events the flows and model tasks announce in this process
(:mod:`tasks.progress`) and draws them with rich on the console Prefect logs to, so log lines
scroll above the bars. On a console that is not a terminal (a pipe, a CI log) nothing is drawn:
the flows' log lines say the same, one per step.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.default_styles import DEFAULT_STYLES
from rich.progress import (BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)
from rich.theme import Theme

from tasks.progress import ModelProgress, PeriodStep, ProgressEvent, RunPlan, listening


PROGRESS_THEME = Theme({name: style for name, style in DEFAULT_STYLES.items() if name.startswith(("bar.", "progress."))})


class RunDisplay:
    """A progress listener that draws one bar for the run (in periods) and one per model step."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
            TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.fields[figures]}"), console=console,
        )
        self.periods: tuple[int, ...] = ()
        self.run: TaskID | None = None
        self.models: dict[str, TaskID] = {}

    def __call__(self, event: ProgressEvent) -> None:
        if isinstance(event, RunPlan):
            self.periods = event.periods
            self.run = self.progress.add_task("periods", total=max(len(event.periods), 1), figures="")
        elif isinstance(event, PeriodStep) and self.run is not None and event.period in self.periods:
            i = self.periods.index(event.period)
            self.progress.update(self.run, completed=i + event.fraction,
                                 description=f"period {event.period} ({i + 1} of {len(self.periods)}): {event.doing}")
        elif isinstance(event, ModelProgress):
            self._model(event)

    def _model(self, event: ModelProgress) -> None:
        task = self.models.get(event.key)
        if event.finished:
            if task is not None:
                self.progress.remove_task(self.models.pop(event.key))
            return
        if task is None:
            task = self.models[event.key] = self.progress.add_task(f"  {event.description}", total=event.total,
                                                                   figures="")
        self.progress.update(task, completed=event.done, total=event.total, figures=event.figures)


@contextmanager
def live_progress(console: Console | None) -> Iterator[None]:
    """Draw the run's progress on ``console`` inside the block (nothing when it is None or not a terminal)."""
    if console is None or not console.is_terminal:
        yield
        return
    display = RunDisplay(console)
    console.push_theme(PROGRESS_THEME)  # Prefect's console theme has no progress-bar styles
    try:
        with display.progress, listening(display):
            yield
    finally:
        console.pop_theme()
