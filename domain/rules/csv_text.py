"""CSV as RFC 4180 writes it, made safe to open in a spreadsheet.

- Records end with CRLF; a field holding a comma, a double quote, CR or LF
  is enclosed in double quotes, its quotes doubled; other fields are written
  as they are. None is an empty field.
- Formula injection (OWASP, "CSV Injection"): a spreadsheet runs a cell that
  begins with `=`, `+`, `-` or `@` as a formula, and a leading tab or
  carriage return can hide such a start. Every cell that begins with one of
  them is prefixed with a single quote, which spreadsheets show as text.
  A value that already begins with quotes and then one of them gets one
  more, so a program reading the file back recovers every value by dropping
  one leading quote where quotes precede one of these characters
  (`restore_cell`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_TRIGGER_SET = frozenset(FORMULA_TRIGGERS)
NEUTRALISER = "'"
LINE_END = "\r\n"

Cell = str | None


def _starts_like_formula(cell: str) -> bool:
    """Begins with a trigger, or with quotes and then a trigger (so that
    restore_cell can tell a prefix we added from a quote of the value)."""
    if not cell:
        return False
    first = cell[0]
    if first in _TRIGGER_SET:
        return True
    if first != NEUTRALISER:
        return False
    rest = cell.lstrip(NEUTRALISER)
    return bool(rest) and rest[0] in _TRIGGER_SET


def neutralise_cell(cell: str) -> str:
    """`cell` as a spreadsheet shows it as text, never runs it."""
    return NEUTRALISER + cell if _starts_like_formula(cell) else cell


def restore_cell(cell: str) -> str:
    """The value neutralise_cell was given (for a program importing the file)."""
    if cell.startswith(NEUTRALISER) and _starts_like_formula(cell[1:]):
        return cell[1:]
    return cell


# Only a cell that begins with one of these can need the prefix.
_MAYBE_FORMULA = _TRIGGER_SET | {NEUTRALISER}


def _safe_row(row: Sequence[Cell]) -> Sequence[Cell]:
    # Most rows need nothing: look first, copy only when a cell needs it.
    for cell in row:
        if cell and cell[0] in _MAYBE_FORMULA:
            return [neutralise_cell(cell) if cell else cell for cell in row]
    return row


def csv_records(rows: Iterable[Sequence[Cell]]) -> str:
    """The records of `rows`, each ended by CRLF, every cell neutralised."""
    out = io.StringIO()
    # QUOTE_MINIMAL quotes a field holding the delimiter, the quote or a
    # character of the line end; None is written as an empty field.
    writer = csv.writer(out, lineterminator=LINE_END, quoting=csv.QUOTE_MINIMAL)
    writer.writerows(_safe_row(row) for row in rows)
    return out.getvalue()
