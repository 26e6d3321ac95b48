"""Shared fixtures for the Prefect tests (only the tests that request them pay for them).

``prefect_harness`` starts ONE temporary Prefect server for the whole session
(``prefect_test_harness``), with ``PREFECT_HOME`` and the result storage in a temp folder: the
harness isolates the API database but not cached task results, which live under
``PREFECT_LOCAL_STORAGE_PATH``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The flows that tests start in their own processes may start a temporary Prefect server, which on
# a fresh PREFECT_HOME migrates its database first (19.5 s on 2 cores, against Prefect's 20 s
# limit). The Makefile sets the same for `make`; this covers a bare `pytest` too.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory: pytest.TempPathFactory):
    """One temporary Prefect API for the session; PREFECT_HOME and results in a temp dir."""
    from prefect.settings import (
        PREFECT_HOME,
        PREFECT_LOCAL_STORAGE_PATH,
        PREFECT_LOGGING_TO_API_ENABLED,
        temporary_settings,
    )
    from prefect.testing.utilities import prefect_test_harness

    home = tmp_path_factory.mktemp("prefect-home")
    updates = {
        PREFECT_HOME: str(home),
        PREFECT_LOCAL_STORAGE_PATH: str(home / "storage"),
        PREFECT_LOGGING_TO_API_ENABLED: False,
    }
    with temporary_settings(updates=updates), prefect_test_harness(server_startup_timeout=120):
        yield home


@pytest.fixture
def relay_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh catalog and storage root for one test (RELAY_DB, RELAY_STORAGE_ROOT)."""
    monkeypatch.setenv("RELAY_DB", str(tmp_path / "relay.duckdb"))
    monkeypatch.setenv("RELAY_STORAGE_ROOT", str(tmp_path / "storage"))
    return tmp_path


@pytest.fixture(scope="session")
def synthetic_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny seeded interaction log (A's synthetic generator): fast enough for flow tests."""
    from storage.synthetic import write_synthetic_csv

    path = tmp_path_factory.mktemp("data") / "synthetic.csv"
    return write_synthetic_csv(path, n_users=60, n_items=150, n_interactions=2400, seed=7)
