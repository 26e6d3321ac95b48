"""The one rule that turns a user or item id as written into the id Relay stores.

Files write the same id in different ways: ``1``, ``01``, ``+1`` and ``1.0`` (a spreadsheet or a
Parquet float column), or ``é`` composed and decomposed. Every reader's id goes through
:func:`normalised_id_sql`, so all of these are one user (docs/architecture.md §2):

1. surrounding white space is dropped (the readers trim fields);
2. text is put in Unicode normal form NFC;
3. an integer, optionally signed and optionally followed by a point and zeros
   (``[+-]?[0-9]+(\\.0*)?``), is written in canonical decimal: no sign for non-negative values, no
   leading zeros, no fraction (``007`` -> ``7``, ``1.0`` -> ``1``, ``-0`` -> ``0``). Digits are
   handled as text, so ids longer than any integer type keep every digit.

Anything else (``1.5``, ``1e3``, ``A01``) is kept as written after steps 1-2.
"""

from __future__ import annotations

_CANONICAL = r"[1-9][0-9]*"
_INTEGER = r"[+-]?[0-9]+(\.0*)?"


def normalised_id_sql(expr: str) -> str:
    """SQL expression: the stored id of the text id ``expr`` (NULL stays NULL).

    The common case, an id already in canonical decimal, is tested first (one cheap match).
    """
    digits = f"regexp_replace({expr}, '^\\+?(-?)0*([0-9]+?)(\\.0*)?$', '\\1\\2')"
    return (
        f"CASE WHEN regexp_full_match({expr}, '{_CANONICAL}') THEN {expr} "
        f"WHEN regexp_full_match({expr}, '{_INTEGER}') THEN CASE WHEN {digits} = '-0' THEN '0' ELSE {digits} END "
        f"ELSE nfc_normalize({expr}) END"
    )
