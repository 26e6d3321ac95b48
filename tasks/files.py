"""Array files under the storage root: the hand-off format between the catalog and remote workers.

Remote workers never open the DuckDB catalog (it has one writer: the parent flow). The parent
exports a period's inputs to files, a worker reads them and writes its results to files, and the
parent records the results in the catalog. The format is a plain sequence of ``.npy`` records
(name, array, name, array, ...): unlike ``.npz`` it has no zip timestamps, so the same arrays always
give the same bytes and the file's SHA-256 is a content hash usable in cache keys.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp


def write_arrays(path: str | Path, arrays: dict[str, np.ndarray]) -> str:
    """Write named arrays to ``path`` atomically and return the file's SHA-256.

    Args:
        path: destination file; parent folders are created.
        arrays: name -> array (numeric, no object arrays). Written in sorted name order.

    Returns:
        Hex SHA-256 of the bytes written (a content hash: same arrays, same hash).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:
        for name in sorted(arrays):
            np.save(f, np.asarray(name), allow_pickle=False)
            np.save(f, np.ascontiguousarray(arrays[name]), allow_pickle=False)
    os.replace(tmp, path)
    return file_sha256(path)


def read_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """Read the arrays written by :func:`write_arrays`."""
    out: dict[str, np.ndarray] = {}
    with Path(path).open("rb") as f:
        size = os.fstat(f.fileno()).st_size
        while f.tell() < size:
            name = str(np.load(f, allow_pickle=False))
            out[name] = np.load(f, allow_pickle=False)
    return out


def csr_arrays(matrix: sp.csr_matrix, *, prefix: str) -> dict[str, np.ndarray]:
    """The arrays that describe a CSR matrix, named ``{prefix}.data`` etc."""
    m = sp.csr_matrix(matrix)
    return {
        f"{prefix}.data": m.data,
        f"{prefix}.indices": m.indices,
        f"{prefix}.indptr": m.indptr,
        f"{prefix}.shape": np.asarray(m.shape, dtype=np.int64),
    }


def csr_from(arrays: dict[str, np.ndarray], *, prefix: str) -> sp.csr_matrix | None:
    """Rebuild the CSR matrix stored under ``prefix``; ``None`` when it is absent."""
    if f"{prefix}.shape" not in arrays:
        return None
    shape = tuple(int(n) for n in arrays[f"{prefix}.shape"])
    return sp.csr_matrix(
        (arrays[f"{prefix}.data"], arrays[f"{prefix}.indices"], arrays[f"{prefix}.indptr"]),
        shape=shape,
    )


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
