"""Turn an interaction file into one SQL SELECT of raw text fields, one row per data line.

Every supported format yields the same columns (:class:`Staged`)::

    row_no BIGINT   -- physical line number (text formats) or 1-based row number (Parquet)
    raw VARCHAR     -- the line as written (or the Parquet row rendered as text)
    user_txt, item_txt, rating_txt, ts_txt VARCHAR   -- trimmed, unquoted fields (NULL if empty)
    pre_reason VARCHAR   -- structural problem found while splitting (NULL if none)

Values are validated afterwards in SQL (:mod:`storage.ingest`). Text files are read whole with
DuckDB's ``read_text`` and split into lines in SQL, which gives exact line numbers and raw text;
files that are not valid UTF-8 fall back to ``read_csv`` with ``store_rejects`` so that only the
bad lines are rejected. CSV fields may be double-quoted (``""`` escapes a quote); a field with a
stray quote makes its line a ``bad quoting`` reject. The header is the first non-blank line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import duckdb

from storage.errors import IngestError

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
"""File endings Relay reads (a folder given as data contributes its files with these endings)."""
_DELIMITERS = {"csv": ",", "tsv": "\t", "recbole": "\t", "movielens": "::"}
_MOVIELENS_HEADER = ("user", "item", "rating", "ts")
_LINES = "_relay_lines"


@dataclass(frozen=True)
class Layout:
    """Where each role sits in a file: resolved format, header and role -> column position."""

    fmt: str
    header: tuple[str, ...]
    positions: dict[str, int]


def detect_format(path: Path) -> str:
    """Format from the file suffix, else from the first line (``::`` MovieLens, tab TSV, CSV)."""
    by_suffix = _SUFFIX_FORMATS.get(path.suffix.lower())
    if by_suffix:
        return by_suffix
    with path.open("rb") as handle:
        first = handle.readline()
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
    pre_reason; ``temp_tables`` must be dropped once the SELECT has been used."""

    layout: Layout
    sql: str
    params: list
    temp_tables: tuple[str, ...] = ()


def _lines_sql(con: duckdb.DuckDBPyConnection, path: Path) -> tuple[str, list, tuple[str, ...], bool]:
    """SQL of (line_no, line, bad_encoding) for every physical line, its params, its temp tables,
    and whether the file has double quotes (so fields may need unquoting)."""
    try:
        has_cr, has_quote = con.execute(
            "SELECT contains(content, chr(13)), contains(content, '\"') FROM read_text(?)", [str(path)]
        ).fetchall()[0]
    except duckdb.InvalidInputException as error:
        if "UTF-8" not in str(error):
            raise IngestError(f"{path}: unreadable ({str(error).splitlines()[0]})") from error
        _load_lines_with_rejects(con, path)
        return f"SELECT * FROM {_LINES}", [], (_LINES,), True
    line = "rtrim(unnest(parts), chr(13))" if has_cr else "unnest(parts)"
    direct = (
        f"SELECT generate_subscripts(parts, 1)::BIGINT AS line_no, {line} AS line, "
        "false AS bad_encoding FROM (SELECT string_split(content, chr(10)) AS parts FROM read_text(?))"
    )
    return direct, [str(path)], (), has_quote


def _load_lines_with_rejects(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Line table for files with invalid UTF-8: bad lines come back from ``store_rejects``."""
    con.execute("DROP TABLE IF EXISTS _relay_rejects; DROP TABLE IF EXISTS _relay_reject_scans")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _relay_good_lines AS "
        "SELECT row_number() OVER () AS k, line FROM read_csv(?, columns={'line': 'VARCHAR'}, "
        "delim='\x1f\x1e\x1f\x1e', quote='', escape='', header=false, auto_detect=false, "
        "strict_mode=false, store_rejects=true, rejects_table='_relay_rejects', "
        "rejects_scan='_relay_reject_scans')",
        [str(path)],
    )
    # Good lines fill, in order, the line numbers that the rejected lines leave free.
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_LINES} AS "
        "WITH bad AS (SELECT DISTINCT line AS line_no, csv_line FROM _relay_rejects), "
        "free AS (SELECT row_number() OVER (ORDER BY n) AS k, n AS line_no FROM "
        "range(1, (SELECT count(*) FROM _relay_good_lines) + (SELECT count(*) FROM bad) + 1) r(n) "
        "WHERE n NOT IN (SELECT line_no FROM bad)) "
        "SELECT f.line_no::BIGINT AS line_no, rtrim(g.line, chr(13)) AS line, false AS bad_encoding "
        "FROM _relay_good_lines g JOIN free f USING (k) "
        "UNION ALL SELECT line_no::BIGINT, csv_line, true FROM bad"
    )
    con.execute("DROP TABLE _relay_good_lines; DROP TABLE _relay_rejects; DROP TABLE _relay_reject_scans")


def _header_of(path: Path, fmt: str) -> tuple[int, tuple[str, ...]]:
    """(line number, cells) of the first non-blank line; MovieLens ``.dat`` has no header (0)."""
    with path.open("rb") as handle:
        for line_no, line in enumerate(handle, start=1):
            if line.strip():
                break
        else:
            raise IngestError(f"{path}: empty file (no header, no rows)")
    if fmt == "movielens":
        return 0, _MOVIELENS_HEADER
    try:
        text = line.decode("utf-8").lstrip("\ufeff").rstrip("\r\n")
    except UnicodeDecodeError as error:
        raise IngestError(f"{path}: header line {line_no} is not UTF-8 text") from error
    cells = re.findall(r'(?:^|,)("(?:[^"]|"")*"|[^,"]*)', text) if fmt == "csv" else text.split("\t")
    return line_no, tuple(c.strip().strip('"') for c in cells)


def stage_text(
    con: duckdb.DuckDBPyConnection, path: Path, *, fmt: str, columns: dict[str, str] | None
) -> Staged:
    """Staging SELECT of a CSV/TSV/MovieLens/RecBole file (see the module docstring)."""
    header_line, header = _header_of(path, fmt)
    if fmt == "movielens" and columns:
        raise IngestError(f"{path}: --columns needs a header; MovieLens .dat is user::item::rating::ts")
    positions = resolve_columns(header, columns=columns, path=path) if fmt != "movielens" else {
        role: i for i, role in enumerate(_MOVIELENS_HEADER)}
    lines, params, temp, quoted = _lines_sql(con, path)
    fields, quoting_ok = _split_sql(fmt) if quoted else (f"string_split(raw, '{_DELIMITERS[fmt]}')", "true")
    clean = _unquote if quoted else (lambda expr: f"nullif(trim({expr}), '')")
    picks = ", ".join(
        f"{clean(f'f[{positions[role] + 1}]')} AS {role}_txt" if role in positions
        else f"NULL::VARCHAR AS {role}_txt"
        for role in ROLES
    )
    sql = (
        f"WITH l AS ({lines}), "
        f"s AS (SELECT line_no, line AS raw, bad_encoding, {fields} AS f FROM l "
        "WHERE line_no > ? AND (bad_encoding OR trim(line) <> '')) "
        f"SELECT line_no AS row_no, raw, {picks}, CASE "
        "WHEN bad_encoding THEN 'invalid encoding' "
        "WHEN contains(raw, chr(0)) THEN 'nul byte' "
        "WHEN len(f) <> ? THEN 'wrong column count' "
        f"WHEN NOT {quoting_ok} THEN 'bad quoting' END AS pre_reason FROM s"
    )
    return Staged(Layout(fmt, header, positions), sql, [*params, header_line, len(header)], temp)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def stage_parquet(
    con: duckdb.DuckDBPyConnection, path: Path, *, columns: dict[str, str] | None
) -> Staged:
    """Staging SELECT of a Parquet file; ``raw`` is the whole row rendered as a struct."""
    try:
        described = con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()
    except duckdb.Error as error:
        raise IngestError(f"{path}: unreadable Parquet ({str(error).splitlines()[0]})") from error
    header = tuple(row[0] for row in described)
    positions = resolve_columns(header, columns=columns, path=path)
    picks = ", ".join(
        f"nullif(trim(CAST({_ident(header[positions[role]])} AS VARCHAR)), '') AS {role}_txt"
        if role in positions else f"NULL::VARCHAR AS {role}_txt"
        for role in ROLES
    )
    row = "struct_pack(" + ", ".join(f"{_ident(h)} := {_ident(h)}" for h in header) + ")"
    has_nul = " OR ".join(f"contains(coalesce({role}_txt, ''), chr(0))" for role in ROLES)
    sql = (
        f"WITH s AS (SELECT file_row_number + 1 AS row_no, CAST({row} AS VARCHAR) AS raw, {picks} "
        "FROM read_parquet(?, file_row_number=true)) "
        f"SELECT *, CASE WHEN {has_nul} THEN 'nul byte' END AS pre_reason FROM s"
    )
    return Staged(Layout("parquet", header, positions), sql, [str(path)])
