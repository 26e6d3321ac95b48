"""Turn an interaction file into one SQL SELECT of raw text fields, one row per record.

Every supported format yields the same columns (:class:`Staged`)::

    row_no BIGINT   -- line number where the record starts (text formats) or 1-based row (Parquet)
    raw VARCHAR     -- the record as written (or the Parquet row rendered as text)
    user_txt, item_txt, rating_txt, ts_txt VARCHAR   -- trimmed, unquoted fields (NULL if empty)
    pre_reason VARCHAR   -- structural problem found while splitting (NULL if none)

Values are validated afterwards in SQL (:mod:`storage.ingest`). Files are opened by their exact
path in Python and handed to DuckDB as Arrow tables, so a file name is never a glob pattern.
Text files (optionally gzip/zstd) become numbered records as :mod:`storage.textfile` describes;
a record that is not valid UTF-8 is an ``invalid encoding`` reject on its own. CSV fields may be
double-quoted (``""`` escapes a quote); a field with a stray quote makes its record a
``bad quoting`` reject. The header is the first non-blank line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from storage.errors import IngestError
from storage.textfile import COMPRESSED_SUFFIXES, first_line, join_quoted_newlines, read_bytes, split_lines

FORMATS = ("auto", "csv", "tsv", "parquet", "movielens", "recbole")
ROLES = ("user", "item", "rating", "ts")
REQUIRED_ROLES = ("user", "item", "ts")
ALIASES: dict[str, tuple[str, ...]] = {
    "user": ("userid", "user", "uid", "visitorid", "customerid", "reviewerid"),
    "item": ("itemid", "item", "movieid", "iid", "productid", "asin", "trackid"),
    "rating": ("rating", "score", "stars"),
    "ts": ("timestamp", "ts", "time", "datetime", "unixreviewtime", "eventtime", "date"),
}
"""Header names recognised per role, after lower-casing and dropping ``_``, ``-`` and spaces."""

_SUFFIX_FORMATS = {
    ".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet", ".pq": "parquet",
    ".dat": "movielens", ".inter": "recbole",
}
DATA_SUFFIXES = tuple(_SUFFIX_FORMATS)
"""File endings Relay reads, each optionally followed by a compression suffix (``.csv.gz``)."""
_DELIMITERS = {"csv": ",", "tsv": "\t", "recbole": "\t", "movielens": "::"}
_MOVIELENS_HEADER = ("user", "item", "rating", "ts")
_LINES, _PARQUET = "_relay_lines", "_relay_parquet"
_ROW_NO = "__relay_row_no"


@dataclass(frozen=True)
class Layout:
    """Where each role sits in a file: resolved format, header and role -> column position."""

    fmt: str
    header: tuple[str, ...]
    positions: dict[str, int]


def data_suffix(path: Path) -> str:
    """The ending that names the format, past a compression suffix (``a.csv.gz`` -> ``.csv``)."""
    suffixes = [x.lower() for x in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSED_SUFFIXES:
        suffixes.pop()
    return suffixes[-1] if suffixes else ""


def is_data_file(path: Path) -> bool:
    """True when ``path`` ends in one of :data:`DATA_SUFFIXES` (possibly compressed)."""
    return data_suffix(path) in _SUFFIX_FORMATS


def detect_format(path: Path) -> str:
    """Format from the file ending, else from the first line (``::`` MovieLens, tab TSV, CSV)."""
    by_suffix = _SUFFIX_FORMATS.get(data_suffix(path))
    if by_suffix:
        return by_suffix
    first = first_line(path)
    if first.startswith(b"PAR1"):
        return "parquet"
    if b"::" in first:
        return "movielens"
    return "tsv" if b"\t" in first else "csv"


def normalise_name(name: str) -> str:
    """Header cell -> comparable name: unquoted, RecBole ``:type`` dropped, lower, no ``_ -``."""
    name = name.strip().lstrip("\ufeff").strip().strip('"')
    name = name.split(":", 1)[0]
    return re.sub(r"[\s_\-]", "", name).lower()


def resolve_columns(
    header: tuple[str, ...], *, columns: dict[str, str] | None, path: Path
) -> dict[str, int]:
    """Map roles to header positions, from an explicit ``columns`` mapping or the aliases.

    Raises:
        IngestError: a required role (user, item, ts) has no column, or a mapped column is absent.
    """
    names = [normalise_name(h) for h in header]
    positions: dict[str, int] = {}
    for role in ROLES:
        if columns and role in columns:
            wanted = normalise_name(columns[role])
            if wanted not in names:
                raise IngestError(
                    f"{path}: missing column {columns[role]!r} (mapped to {role}); "
                    f"header has {', '.join(header)}"
                )
            positions[role] = names.index(wanted)
            continue
        for alias in ALIASES[role]:
            if alias in names:
                positions[role] = names.index(alias)
                break
    missing = [role for role in REQUIRED_ROLES if role not in positions]
    if missing:
        raise IngestError(
            f"{path}: missing required column(s) for {', '.join(missing)}; header has "
            f"{', '.join(header)} (map them with --columns user=…,item=…,ts=…)"
        )
    return positions


def _unquote(expr: str) -> str:
    """SQL: trim a field and remove surrounding double quotes (``""`` -> ``"``)."""
    return (
        f"CASE WHEN trim({expr}) LIKE '\"%\"' AND length(trim({expr})) >= 2 "
        f"THEN replace(trim({expr})[2:-2], '\"\"', '\"') ELSE nullif(trim({expr}), '') END"
    )


def _split_sql(fmt: str) -> tuple[str, str]:
    """SQL expressions (fields list, quoting-ok flag) splitting column ``raw`` for ``fmt``."""
    delim = _DELIMITERS[fmt]
    if fmt != "csv":
        return f"string_split(raw, '{delim}')", "true"
    pattern = ',("(?:[^"]|"")*"|[^,"]*)'
    fields = (
        f"CASE WHEN contains(raw, '\"') THEN regexp_extract_all(',' || raw, '{pattern}', 1) "
        "ELSE string_split(raw, ',') END"
    )
    # Quoted parsing is exact only if the matched fields plus their delimiters rebuild the line.
    ok = "(NOT contains(raw, '\"') OR list_sum(list_transform(f, lambda x: length(x) + 1)) = length(raw) + 1)"
    return fields, ok


@dataclass(frozen=True)
class Staged:
    """A SELECT over the file with columns row_no, raw, user_txt, item_txt, rating_txt, ts_txt,
    pre_reason. It reads the Arrow tables in ``views``: register them under their names while
    the SELECT runs (:func:`storage.catalog.registered`)."""

    layout: Layout
    sql: str
    params: list
    views: dict[str, pa.Table]


def _first_lines(lines: pa.Table) -> Iterator[bytes]:
    """The lines one by one, converted 64 at a time (callers stop early)."""
    for start in range(0, len(lines), 64):
        yield from lines["line"].slice(start, 64).to_pylist()


def _header_of(lines: pa.Table, *, path: Path, fmt: str) -> tuple[int, tuple[str, ...]]:
    """(index in ``lines``, cells) of the first non-blank line; MovieLens ``.dat`` has none (-1)."""
    if fmt == "movielens":
        return -1, _MOVIELENS_HEADER
    for index, line in enumerate(_first_lines(lines)):
        if line.strip():
            break
    else:
        raise IngestError(f"{path}: empty file (no header, no rows)")
    try:
        text = line.decode("utf-8").lstrip("\ufeff")
    except UnicodeDecodeError as error:
        raise IngestError(f"{path}: header line {index + 1} is not UTF-8 text") from error
    cells = re.findall(r'(?:^|,)("(?:[^"]|"")*"|[^,"]*)', text) if fmt == "csv" else text.split("\t")
    return index, tuple(c.strip().strip('"') for c in cells)


def _as_text(lines: pa.Table) -> tuple[pa.Table, str]:
    """``lines`` with text lines when the whole file is UTF-8 (one vectorised check), and the SQL
    of each line's text: NULL for a line that is not UTF-8 (decoded one by one in that case)."""
    try:
        return lines.set_column(1, "line", lines["line"].cast(pa.large_string())), "line"
    except pa.ArrowInvalid:
        return lines, "try(decode(line))"


def stage_text(path: Path, *, fmt: str, columns: dict[str, str] | None) -> Staged:
    """Staging SELECT of a CSV/TSV/MovieLens/RecBole file (see the module docstring)."""
    if fmt == "movielens" and columns:
        raise IngestError(f"{path}: --columns needs a header; MovieLens .dat is user::item::rating::ts")
    data = read_bytes(path)
    quoted = b'"' in data
    lines = split_lines(data)
    del data
    header_index, header = _header_of(lines, path=path, fmt=fmt)
    positions = resolve_columns(header, columns=columns, path=path) if fmt != "movielens" else {
        role: i for i, role in enumerate(_MOVIELENS_HEADER)}
    if quoted and fmt == "csv":
        lines = join_quoted_newlines(lines, n_fields=len(header), first=header_index + 1)
    lines, text = _as_text(lines)
    fields, quoting_ok = _split_sql(fmt) if quoted else (f"string_split(raw, '{_DELIMITERS[fmt]}')", "true")
    clean = _unquote if quoted else (lambda expr: f"nullif(trim({expr}), '')")
    picks = ", ".join(
        f"{clean(f'f[{positions[role] + 1}]')} AS {role}_txt" if role in positions
        else f"NULL::VARCHAR AS {role}_txt"
        for role in ROLES
    )
    first_data_line = int(lines["line_no"][header_index].as_py()) + 1 if header_index >= 0 else 1
    sql = (
        f"WITH d AS (SELECT line_no, line, {text} AS text FROM {_LINES} WHERE line_no >= ?), "
        "l AS (SELECT line_no, coalesce(text, CAST(line AS VARCHAR)) AS line, text IS NULL AS bad_encoding "
        "FROM d), "
        f"s AS (SELECT line_no, line AS raw, bad_encoding, {fields} AS f FROM l "
        "WHERE bad_encoding OR trim(line) <> '') "
        f"SELECT line_no AS row_no, raw, {picks}, CASE "
        "WHEN bad_encoding THEN 'invalid encoding' "
        "WHEN contains(raw, chr(0)) THEN 'nul byte' "
        "WHEN len(f) <> ? THEN 'wrong column count' "
        f"WHEN NOT {quoting_ok} THEN 'bad quoting' END AS pre_reason FROM s"
    )
    return Staged(Layout(fmt, header, positions), sql, [first_data_line, len(header)], {_LINES: lines})


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def stage_parquet(path: Path, *, columns: dict[str, str] | None) -> Staged:
    """Staging SELECT of a Parquet file; ``raw`` is the whole row rendered as a struct."""
    try:
        with path.open("rb") as handle:
            table = pq.read_table(handle)
    except (pa.ArrowException, OSError) as error:
        raise IngestError(f"{path}: unreadable Parquet ({str(error).splitlines()[0]})") from error
    header = tuple(table.column_names)
    positions = resolve_columns(header, columns=columns, path=path)
    table = table.append_column(_ROW_NO, pa.array(range(1, table.num_rows + 1), pa.int64()))
    picks = ", ".join(
        f"nullif(trim(CAST({_ident(header[positions[role]])} AS VARCHAR)), '') AS {role}_txt"
        if role in positions else f"NULL::VARCHAR AS {role}_txt"
        for role in ROLES
    )
    row = "struct_pack(" + ", ".join(f"{_ident(h)} := {_ident(h)}" for h in header) + ")"
    has_nul = " OR ".join(f"contains(coalesce({role}_txt, ''), chr(0))" for role in ROLES)
    sql = (
        f"WITH s AS (SELECT {_ROW_NO} AS row_no, CAST({row} AS VARCHAR) AS raw, {picks} FROM {_PARQUET}) "
        f"SELECT *, CASE WHEN {has_nul} THEN 'nul byte' END AS pre_reason FROM s"
    )
    return Staged(Layout("parquet", header, positions), sql, [], {_PARQUET: table})
