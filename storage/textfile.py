"""Read a text interaction file, by its exact path, into numbered records (an Arrow table).

Rules (docs/architecture.md §2):

* The file is opened by its exact path: a name such as ``g[1].csv`` or ``g*.csv`` is that one
  file, never a glob pattern.
* gzip and zstd compression are recognised by their magic bytes (``1f 8b``, ``28 b5 2f fd``),
  whatever the file is called, and the content is decompressed in memory.
* ``\\n``, ``\\r\\n`` and a lone ``\\r`` all end a line (Python's universal newlines), so files
  written with old Mac line endings read like any other.
* A record is one line, except where a double-quoted CSV field contains a line break: a line with
  an odd number of double quotes opens a candidate that runs to the next such line, and the
  candidate becomes one record only if its text parses as quoted CSV fields with the header's
  column count. Otherwise each line stays a record of its own (and fails as ``bad quoting``), so a
  stray quote never swallows the lines after it.

Records keep their bytes (``line`` is binary): decoding, and rejecting lines that are not UTF-8,
happens per record in SQL (:mod:`storage.readers`).
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from storage.errors import IngestError

COMPRESSIONS = {b"\x1f\x8b": "gzip", b"\x28\xb5\x2f\xfd": "zstd"}
"""Magic bytes -> codec of the compressed files Relay reads."""
COMPRESSED_SUFFIXES = (".gz", ".gzip", ".zst", ".zstd")
"""File endings of compressed files (``ratings.csv.gz`` is a CSV file)."""
_FIELD = re.compile(r',("(?:[^"]|"")*"|[^,"\n]*)')


def compression_of(path: Path) -> str | None:
    """``"gzip"``, ``"zstd"`` or None, from the file's first bytes."""
    with path.open("rb") as handle:
        magic = handle.read(4)
    return next((codec for prefix, codec in COMPRESSIONS.items() if magic.startswith(prefix)), None)


def read_bytes(path: Path, *, limit: int | None = None) -> bytes:
    """The file's content (its first ``limit`` bytes), decompressed when it is gzip or zstd.

    Raises:
        IngestError: the compressed data is corrupt or truncated.
    """
    codec = compression_of(path)
    with path.open("rb") as handle:
        if codec is None:
            return handle.read(limit)
        try:
            return _decompressed(handle, codec).read(limit)
        except (OSError, EOFError, pa.ArrowException) as error:
            raise IngestError(f"{path}: corrupt {codec} data ({str(error).splitlines()[0]})") from error


def first_line(path: Path) -> bytes:
    """The first line of the (decompressed) file, for format sniffing (at most 64 KiB of it)."""
    return read_bytes(path, limit=1 << 16).split(b"\n", 1)[0]


def _decompressed(handle: BinaryIO, codec: str) -> BinaryIO:
    if codec == "gzip":
        return gzip.GzipFile(fileobj=handle)
    return pa.CompressedInputStream(pa.PythonFile(handle, mode="r"), codec)


def split_lines(data: bytes) -> pa.Table:
    """Physical lines of ``data``: ``line_no`` (int64, from 1) and ``line`` (binary, no ending).

    A final line ending does not start another (empty) line.
    """
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    size = len(data) - 1 if data.endswith(b"\n") else len(data)
    whole = pa.Array.from_buffers(
        pa.large_binary(), 1, [None, pa.py_buffer(np.array([0, size], dtype=np.int64)), pa.py_buffer(data)]
    )
    lines = pc.split_pattern(whole, b"\n").flatten() if size else pa.array([], pa.large_binary())
    return pa.table({"line_no": np.arange(1, len(lines) + 1, dtype=np.int64), "line": lines})


def join_quoted_newlines(lines: pa.Table, *, n_fields: int, first: int = 0) -> pa.Table:
    """Merge the lines of CSV records whose quoted fields contain line breaks (module rules).

    Args:
        lines: the output of :func:`split_lines`.
        n_fields: the header's column count.
        first: index of the first line that may start a record (after the header).

    Returns:
        The same columns; a merged record keeps the line number of its first line.
    """
    text = lines["line"].combine_chunks()
    odd = np.flatnonzero(np.asarray(pc.count_substring(text, b'"')) % 2 == 1)
    odd = odd[odd >= first]
    merges: list[tuple[int, int, bytes]] = []
    k = 0
    while k + 1 < len(odd):
        start, end = int(odd[k]), int(odd[k + 1])
        record = b"\n".join(text.slice(start, end - start + 1).to_pylist())
        if _is_csv_record(record, n_fields):
            merges.append((start, end, record))
            k += 2
        else:
            k += 1
    if not merges:
        return lines
    keep = np.ones(len(text), dtype=bool)
    starts = np.zeros(len(text), dtype=bool)
    for start, end, _ in merges:
        keep[start + 1:end + 1] = False
        starts[start] = True
    merged = pc.replace_with_mask(text, pa.array(starts), pa.array([m[2] for m in merges], pa.large_binary()))
    return pa.table({"line_no": lines["line_no"].filter(pa.array(keep)), "line": merged.filter(pa.array(keep))})


def _is_csv_record(record: bytes, n_fields: int) -> bool:
    """True when ``record`` is exactly ``n_fields`` CSV fields (quoted fields may hold newlines)."""
    try:
        text = record.decode("utf-8")
    except UnicodeDecodeError:
        return False
    fields = _FIELD.findall("," + text)
    return len(fields) == n_fields and sum(len(f) + 1 for f in fields) == len(text) + 1
