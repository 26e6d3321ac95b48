"""Where Relay's files live under the storage root, and the one rule for dataset names.

Every file a flow or worker reads or writes is named here, from (storage root, dataset, period,
strategy, content key), so no caller builds a path by hand and no path can leave the root::

    <root>/<dataset>/inputs/rows-<period>.arrays                   a period's bags (distill input)
    <root>/<dataset>/inputs/train-<strategy>-<period>.arrays       a strategy's training inputs
    <root>/<dataset>/summaries/period-<period>-<key>.arrays        a Distill-CF summary (+ .json)
    <root>/<dataset>/summaries/period-<period>-<key>.ckpt          its resumable checkpoint
    <root>/<dataset>/models/<strategy>/period-<period>-<key>.state a strategy state (+ .json)
    <root>/<dataset>/report/<name>                                 plots written by ``relay report``
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DB = "relay.duckdb"
"""The catalog file used when none is given (relative to the working directory)."""
DEFAULT_STORAGE_ROOT = "relay-storage"
"""The storage root used when none is given (relative to the working directory)."""
NAME_RULE = "letters, digits, '-', '_' and '.', at most 64 characters, not '.' or '..'"
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def check_name(value: str, *, what: str = "dataset") -> str:
    """``value`` if it is a valid dataset (or strategy) name, else ``ValueError`` naming the rule.

    Names become folder names under the storage root, so the rule excludes path separators,
    spaces and the relative names ``.`` and ``..``.
    """
    if not isinstance(value, str) or not _NAME.fullmatch(value) or value in (".", ".."):
        raise ValueError(f"{what} name {value!r} is invalid: use {NAME_RULE}")
    return value


@dataclass(frozen=True)
class Layout:
    """The files of one dataset under a storage root.

    Attributes:
        root: the storage root (resolved to an absolute path).
        dataset: a name that passes :func:`check_name`.
    """

    root: Path
    dataset: str

    def __post_init__(self) -> None:
        check_name(self.dataset)
        object.__setattr__(self, "root", Path(self.root).resolve())

    @property
    def folder(self) -> Path:
        """``<root>/<dataset>``."""
        return self._inside("")

    def period_rows(self, period: int) -> Path:
        """Array file of period ``period``'s (user, period) bags."""
        return self._inside(f"inputs/rows-{_period(period)}.arrays")

    def train_inputs(self, strategy: str, period: int) -> Path:
        """Array file of what ``strategy`` trains on at ``period``."""
        return self._inside(f"inputs/train-{check_name(strategy, what='strategy')}-{_period(period)}.arrays")

    def summary(self, period: int, key: str) -> Path:
        """Array file of period ``period``'s Distill-CF summary, content key ``key``."""
        return self._inside(f"summaries/period-{_period(period)}-{_key(key)}.arrays")

    def checkpoint(self, period: int, key: str) -> Path:
        """Resumable Distill-CF checkpoint of the run that writes :meth:`summary` (same key)."""
        return self._inside(f"summaries/period-{_period(period)}-{_key(key)}.ckpt")

    def model_state(self, strategy: str, period: int, key: str) -> Path:
        """State file of M_period of ``strategy``, content key ``key``."""
        return self._inside(f"models/{check_name(strategy, what='strategy')}/period-{_period(period)}-{_key(key)}.state")

    def report(self, name: str) -> Path:
        """A report file (``name`` is a plain file name)."""
        return self._inside(f"report/{check_name(name, what='report file')}")

    def contains(self, path: str | Path) -> bool:
        """True when ``path`` resolves to a place inside this dataset's folder."""
        return Path(path).resolve().is_relative_to(self.folder)

    def _inside(self, relative: str) -> Path:
        path = (self.root / self.dataset / relative).resolve()
        if not path.is_relative_to(self.root / self.dataset):
            raise ValueError(f"{relative!r} leaves the storage folder {self.root / self.dataset}")
        return path


def meta_path(path: Path) -> Path:
    """The JSON file that describes a result file (``<path>.json``)."""
    return path.with_name(path.name + ".json")


def _period(period: int) -> str:
    if isinstance(period, bool) or not isinstance(period, int) or period < 0:
        raise ValueError(f"period must be an integer >= 0, got {period!r}")
    return f"{period:04d}"


def _key(key: str) -> str:
    if not re.fullmatch(r"[0-9a-f]{8,64}", key):
        raise ValueError(f"content key {key!r} must be 8-64 lowercase hex digits")
    return key
