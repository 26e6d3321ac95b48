"""Errors raised by :mod:`storage`; each message is one line that names the bad input."""

from __future__ import annotations


class StorageError(Exception):
    """Base class for every error the storage layer raises on purpose."""


class SchemaVersionError(StorageError):
    """The catalog file was written by a newer (or unknown) schema version."""


class IngestError(StorageError):
    """A file cannot be ingested at all (unreadable, empty, missing a required column).

    Nothing is written when this is raised. Row-level problems never raise: they go to
    ``rejected_rows``.
    """


class PeriodPolicyError(StorageError):
    """A period policy is malformed or cannot be applied without ``reset=True``."""


class CatalogBusyError(StorageError, ConnectionError):
    """Another process holds the catalog file's lock (DuckDB allows one writing process).

    A ``ConnectionError``, so callers that retry transient I/O retry this too.
    """
