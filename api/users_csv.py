"""The users CSV of a bulk invitation, read as a stream (docs/csv-import.md).

- UTF-8, with or without a byte-order mark; a file that is not UTF-8 is
  refused whole, before any row is read (`check_utf8`).
- The first non-blank line names the columns: email, firstName, lastName,
  and optionally role and qualification. Names match ignoring case, spaces,
  `_` and `-` ("First Name", "first_name" and "FIRSTNAME" are firstName).
  A missing required column or a column named twice refuses the file; other
  columns are ignored and reported.
- Each further line is a row; blank lines (or only commas) are skipped. A
  row with more fields than the header is refused; missing trailing fields
  are empty. Role is ADMIN or MEMBER in any case, empty for MEMBER. A cell
  that the users export neutralised against formula injection (a leading
  `'` before `=`, `+`, `-`, `@`) is read back as exported.

The console reads the same format in the browser (static/bulk.js).
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from domain.enums import Role
from domain.errors import DomainError, ErrorCode
from domain.rules.csv_text import restore_cell
from domain.services.bulk_invitations import InvitationRequest

REQUIRED_COLUMNS = ("email", "firstName", "lastName")
OPTIONAL_COLUMNS = ("role", "qualification")
_CHUNK = 64 * 1024
_NOT_A_LETTER = re.compile(r"[\s_-]+")


class CsvFileError(Exception):
    """The file as a whole cannot be read as a users CSV: no row is tried."""


@dataclass(frozen=True, slots=True)
class CsvRow:
    line: int  # where the record starts in the file, counting from 1
    request: InvitationRequest


@dataclass(frozen=True, slots=True)
class CsvRefusal:
    line: int
    error: DomainError


@dataclass(frozen=True, slots=True)
class CsvHeader:
    positions: dict[str, int]  # column name → index in a record
    width: int
    ignored: tuple[str, ...] = field(default=())


def column_key(name: str) -> str:
    return _NOT_A_LETTER.sub("", name).casefold()


_KNOWN = {column_key(name): name for name in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)}


def check_utf8(stream: BinaryIO) -> None:
    """Refuse a stream that is not UTF-8 (naming the first bad line), then rewind it.

    Decoded chunk by chunk: a large file is never held in memory."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    while chunk := stream.read(_CHUNK):
        try:
            decoder.decode(chunk)
        except UnicodeDecodeError as error:
            line += chunk[: error.start].count(b"\n")
            raise CsvFileError(f"Line {line} is not UTF-8: save the file as UTF-8.") from None
        line += chunk.count(b"\n")
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise CsvFileError(f"Line {line} is not UTF-8: save the file as UTF-8.") from None
    stream.seek(0)


def read_header(names: list[str]) -> CsvHeader:
    positions: dict[str, int] = {}
    ignored: list[str] = []
    for index, raw in enumerate(names):
        name = _KNOWN.get(column_key(raw))
        if name is None:
            if raw.strip():
                ignored.append(raw.strip())
            continue
        if name in positions:
            raise CsvFileError(f"The column {name} is named twice in the first line.")
        positions[name] = index
    missing = [name for name in REQUIRED_COLUMNS if name not in positions]
    if missing:
        raise CsvFileError(
            f"Missing column(s) {', '.join(missing)}: the first line must name the columns "
            f"{', '.join(REQUIRED_COLUMNS)} (and optionally {', '.join(OPTIONAL_COLUMNS)})."
        )
    return CsvHeader(positions=positions, width=len(names), ignored=tuple(ignored))


class UsersCsv:
    """The rows of a users CSV; `position` is how far into the stream it has read."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
        self._reader = csv.reader(self._text)
        self._next_line = 1
        self.header = self._read_header()

    @property
    def position(self) -> int:
        return self._stream.tell()

    def _records(self) -> Iterator[tuple[int, list[str] | DomainError]]:
        while True:
            line = self._next_line
            try:
                record = next(self._reader)
            except StopIteration:
                return
            except csv.Error as error:
                self._next_line = self._reader.line_num + 1
                yield line, DomainError(ErrorCode.INVALID_INPUT, f"Not valid CSV: {error}.")
                continue
            self._next_line = self._reader.line_num + 1
            if any(cell.strip() for cell in record):
                yield line, record

    def _read_header(self) -> CsvHeader:
        for _, record in self._records():
            if isinstance(record, DomainError):
                raise CsvFileError(f"The first line is not valid CSV: {record.message}")
            return read_header(record)
        columns = ", ".join(REQUIRED_COLUMNS)
        raise CsvFileError(f"The file is empty: its first line must name the columns {columns}.")

    def rows(self) -> Iterator[CsvRow | CsvRefusal]:
        for line, record in self._records():
            if isinstance(record, DomainError):
                yield CsvRefusal(line, record)
                continue
            try:
                yield CsvRow(line, self._request(record))
            except DomainError as refusal:
                yield CsvRefusal(line, refusal)

    def _request(self, record: list[str]) -> InvitationRequest:
        width = self.header.width
        if len(record) > width:
            raise DomainError(
                ErrorCode.INVALID_INPUT,
                f"The row has {len(record)} fields; the first line names {width} columns.",
            )

        def cell(name: str) -> str:
            index = self.header.positions.get(name)
            if index is None or index >= len(record):
                return ""
            return restore_cell(record[index])

        return InvitationRequest(
            email=cell("email"),
            first_name=cell("firstName"),
            last_name=cell("lastName"),
            role=parse_role(cell("role")),
            qualification=cell("qualification") or None,
        )


def parse_role(text: str) -> Role:
    """A role cell: empty is MEMBER; any case. OWNER parses (the service refuses it)."""
    cleaned = text.strip().upper()
    if not cleaned:
        return Role.MEMBER
    try:
        return Role(cleaned)
    except ValueError:
        raise DomainError(
            ErrorCode.INVALID_INPUT, "The role must be ADMIN or MEMBER.", field="role"
        ) from None
