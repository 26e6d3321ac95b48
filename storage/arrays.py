"""Array files under the storage root: period inputs, summaries, model states and checkpoints.

Remote workers never open the DuckDB catalog (it has one writer: the parent flow). The parent
exports a period's inputs to files, a worker reads them and writes its results to files, and the
parent records the results in the catalog. Model states and Distill-CF checkpoints use the same
format. It is a plain sequence of ``.npy`` records (name, array, name, array, ...) read with
``allow_pickle=False``, so loading a file can never run code; unlike ``.npz`` it has no zip
timestamps, so the same arrays always give the same bytes and the file's SHA-256 is a content hash
usable in cache keys. Text values travel as NumPy unicode scalars; a SciPy sparse matrix is stored
as its CSR parts (``<name>/csr.data``, ``.indices``, ``.indptr``, ``.shape``) and read back whole.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

Arrays = dict[str, "np.ndarray | sp.csr_matrix"]
_CSR_PARTS = ("data", "indices", "indptr", "shape")


def write_arrays(path: str | Path, arrays: Arrays) -> str:
    """Write named arrays to ``path`` atomically and return the file's SHA-256.

    Args:
        path: destination file; parent folders are created.
        arrays: name -> NumPy array (numeric, bool or unicode; no object arrays) or SciPy sparse
            matrix (stored as CSR). Written in sorted name order.

    Returns:
        Hex SHA-256 of the bytes written (a content hash: same arrays, same hash).
    """
    records: dict[str, np.ndarray] = {}
    for name, value in arrays.items():
        if sp.issparse(value):
            m = sp.csr_matrix(value)
            parts = (m.data, m.indices, m.indptr, np.asarray(m.shape, dtype=np.int64))
            records |= {f"{name}/csr.{part}": a for part, a in zip(_CSR_PARTS, parts)}
        else:
            records[name] = np.asarray(value)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:
        for name in sorted(records):
            np.save(f, np.asarray(name), allow_pickle=False)
            np.save(f, np.asarray(records[name], order="C"), allow_pickle=False)
    os.replace(tmp, path)
    return file_sha256(path)


def read_arrays(path: str | Path) -> Arrays:
    """Read the arrays written by :func:`write_arrays` (sparse matrices come back as CSR)."""
    records: dict[str, np.ndarray] = {}
    with Path(path).open("rb") as f:
        size = os.fstat(f.fileno()).st_size
        while f.tell() < size:
            name = str(np.load(f, allow_pickle=False))
            records[name] = np.load(f, allow_pickle=False)
    out: Arrays = {name: a for name, a in records.items() if "/csr." not in name}
    for name in {n.rsplit("/csr.", 1)[0] for n in records if "/csr." in n}:
        data, indices, indptr, shape = (records[f"{name}/csr.{part}"] for part in _CSR_PARTS)
        out[name] = sp.csr_matrix((data, indices, indptr), shape=tuple(int(n) for n in shape))
    return out


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def content_key(*parts: Any) -> str:
    """A short stable hash of JSON-serialisable parts (used in file names of derived results)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def write_json(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` as JSON atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, sort_keys=True, indent=1, default=str))
    os.replace(tmp, path)
    return path


def read_json(path: str | Path) -> dict[str, Any]:
    """Read a JSON object written by :func:`write_json`."""
    return json.loads(Path(path).read_text())
