"""Orchestration details a user meets first: a missing GPU fails at once, the run form shows
plain text, the model steps declare what the GPU pool needs."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

SPHINX = re.compile(r":[a-z]+:`|``")


def _has_gpu() -> bool:
    import torch

    from models.device import _jax_gpus

    return torch.cuda.is_available() or bool(_jax_gpus())


def test_asking_for_cuda_without_a_gpu_fails_at_once_with_one_line(tmp_path) -> None:
    if _has_gpu():
        pytest.skip("a GPU is visible here")
    from relay.cli import app

    result = CliRunner().invoke(app, ["run", "--dataset", "d", "--device", "cuda", "--db", str(tmp_path / "r.duckdb")])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: device 'cuda' was asked for"), result.output
    assert not (tmp_path / "r.duckdb").exists()  # nothing ran


def test_auto_and_cpu_pass_the_device_check() -> None:
    from flows.model_steps import check_devices
    from models.configs import DistillConfig, MVAEConfig, TrainingConfig
    from models.device import DeviceUnavailable, torch_device

    for device in ("auto", "cpu"):
        check_devices(distill=DistillConfig(device=device), training=TrainingConfig(mvae=MVAEConfig(device=device)))
    if not _has_gpu():
        assert torch_device("auto").type == "cpu"
        with pytest.raises(DeviceUnavailable):
            check_devices(training=TrainingConfig(mvae=MVAEConfig(device="cuda")))


def test_run_form_shows_plain_text() -> None:
    """Flow descriptions and parameter descriptions (what the UI's run form shows) carry no Sphinx markup."""
    from flows.continual import continual_flow
    from flows.experiments import noise_flow, retention_flow, sample_efficiency_flow
    from flows.ingest import ingest_flow
    from flows.model_steps import distill_periods, train_period
    from flows.period import process_period

    for flow in (continual_flow, ingest_flow, process_period, distill_periods, train_period, sample_efficiency_flow,
                 noise_flow, retention_flow):
        texts = [flow.description or ""] + [p.get("description", "") for p in
                                            flow.parameters.model_dump()["properties"].values()]
        assert not [t for t in texts if SPHINX.search(t)], flow.name


def test_train_period_takes_every_strategy_of_a_period() -> None:
    from flows.model_steps import train_period

    params = train_period.validate_parameters({
        "storage_root": "s", "dataset": "d", "period": 2,
        "strategies": [{"strategy": "individual", "inputs_sha": "a"},
                       {"strategy": "ader", "inputs_sha": "b", "previous_path": "p", "previous_sha": "c"}]})
    assert [w.strategy for w in params["strategies"]] == ["individual", "ader"]
    assert params["training"].mvae.epochs == 100 and params["force"] is False
