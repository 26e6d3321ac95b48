"""Test-only helpers: the paper's static split drawn from a matrix (for synthetic test data), and
bench scripts loaded as modules."""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import scipy.sparse as sp

from models.splits import binarise

MIN_INTERACTIONS = 3


@dataclass(frozen=True)
class Split:
    """Per-user split; all matrices (n_users, n_items) binary csr, dropped users have empty rows."""

    train: sp.csr_matrix
    val: sp.csr_matrix
    test: sp.csr_matrix
    val_context: sp.csr_matrix  # = train
    test_context: sp.csr_matrix  # = train + val


def paper_split(interactions: sp.spmatrix, *, seed: int = 0) -> Split:
    """The ∞-AE paper's protocol (Sachdeva et al., NeurIPS 2022, appendix) on a matrix.

    Users with fewer than 3 interactions are dropped; each remaining user's items are shuffled
    with a seeded generator and split 80/10/10, ``n_test = max(1, round(0.1·n))``,
    ``n_val = round(0.1·n)`` (half rounds up), the rest in train.
    """
    x = binarise(interactions)
    n = np.diff(x.indptr)
    user = np.repeat(np.arange(x.shape[0]), n)
    keys = np.random.default_rng(seed).random(x.nnz)
    order = np.lexsort((keys, user))  # per user, a random permutation of its entries
    position = np.empty(x.nnz, dtype=np.int64)
    position[order] = np.arange(x.nnz) - x.indptr[user[order]]
    n_val = np.floor(0.1 * n + 0.5).astype(np.int64)
    n_test = np.maximum(1, n_val)
    kept = n[user] >= MIN_INTERACTIONS
    is_test = kept & (position < n_test[user])
    is_val = kept & ~is_test & (position < n_test[user] + n_val[user])
    is_train = kept & ~is_test & ~is_val

    def part(mask: np.ndarray) -> sp.csr_matrix:
        return sp.csr_matrix((x.data[mask], (user[mask], x.indices[mask])), shape=x.shape, dtype=x.dtype)

    train, val, test = part(is_train), part(is_val), part(is_test)
    return Split(train=train, val=val, test=test, val_context=train, test_context=binarise(train + val))


BENCH = Path(__file__).parents[1] / "bench"


def load_bench(script: Path) -> ModuleType:
    """Import a bench script (``bench/`` is not a package) as ``bench_<stem>``.

    Its sibling imports resolve as when it runs as a script, its dataclasses find their module,
    and the thread counts it pins in ``os.environ`` for its own process are undone for the suite.
    """
    if str(script.parent) not in sys.path:
        sys.path.append(str(script.parent))
    spec = importlib.util.spec_from_file_location(f"bench_{script.stem}", script)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    environ = dict(os.environ)
    try:
        spec.loader.exec_module(module)
    finally:
        os.environ.clear()
        os.environ.update(environ)
    return module
