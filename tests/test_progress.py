"""Progress: events reach listeners in this process only while they listen, the console display
follows them, and a finished progress artifact keeps its last figures."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from relay.console import RunDisplay
from tasks.progress import ModelProgress, PeriodStep, RunPlan, announce, listening


def test_listeners_hear_events_only_inside_the_block() -> None:
    heard: list = []
    announce(RunPlan((0,)))
    with listening(heard.append):
        announce(PeriodStep(0, "distilling", 0.0))
    announce(PeriodStep(0, "done", 1.0))
    assert heard == [PeriodStep(0, "distilling", 0.0)]


def test_console_display_follows_periods_and_model_steps() -> None:
    display = RunDisplay(Console(file=io.StringIO(), force_terminal=True, width=150))
    for event in (RunPlan((3, 4, 5)), PeriodStep(4, "training individual, ader", 0.25),
                  ModelProgress("d-train-progress-ader", "ader MVAE of period 4", 7, 100, "512.3, 31.2")):
        display(event)
    run, model = display.progress.tasks
    assert run.completed == pytest.approx(1.25) and run.total == 3
    assert run.description == "period 4 (2 of 3): training individual, ader"
    assert (model.completed, model.total, model.fields["figures"]) == (7, 100, "512.3, 31.2")
    display(ModelProgress("d-train-progress-ader", "ader MVAE of period 4", 9, 100, "500.1, 31.5", finished=True))
    assert [t.id for t in display.progress.tasks] == [run.id]  # a finished model step leaves the display


def test_finished_progress_artifact_keeps_its_last_figures(prefect_harness) -> None:
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from tasks.progress import ProgressReporter

    @flow
    def early_stop() -> None:
        report = ProgressReporter("unit-early-stop", total=10, description="unit", every_s=0)
        report(3, 1.5, 0.25)
        report.done()

    early_stop()
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["unit-early-stop"])))
    assert found[0].data == 100.0
    assert found[0].description == "unit: done after step 3/10 (1.5, 0.25)"
