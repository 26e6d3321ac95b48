"""Where Relay keeps its state: one DuckDB catalog plus a storage root for files.

Every setting has a default that works from the repository root and can be overridden with an
environment variable (``RELAY_DB``, ``RELAY_STORAGE_ROOT``) or a command-line option.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class RelaySettings(BaseSettings):
    """Process-wide settings, read from ``RELAY_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="RELAY_", frozen=True)

    db: Path = Field(default=Path("relay.duckdb"), description="DuckDB catalog file")
    storage_root: Path = Field(
        default=Path("relay-storage"),
        description="Folder for checkpoints, summaries and plots",
    )


def get_settings() -> RelaySettings:
    """Settings as the environment says now (read fresh, so tests can monkeypatch env)."""
    return RelaySettings()
