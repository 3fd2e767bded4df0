"""Table tests of the CSV rule: RFC 4180 quoting and the formula-injection guard."""

import csv
import io

import pytest

from domain.rules.csv_text import csv_records, neutralise_cell, restore_cell


@pytest.mark.parametrize(
    ("cell", "shown"),
    [
        ("=1+1", "'=1+1"),
        ('=HYPERLINK("http://evil.example")', '\'=HYPERLINK("http://evil.example")'),
        ("+33 1 23", "'+33 1 23"),
        ("-2", "'-2"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("'=1", "''=1"),  # one more quote, so that restoring is exact
        ("''-1", "'''-1"),
        ("'a", "'a"),
        ("'", "'"),
        ("a=1", "a=1"),
        (" =1", " =1"),
        ("\n=1", "\n=1"),  # OWASP lists tab and CR only
        ("", ""),
        ("Ada", "Ada"),
        ("2026-01-02T03:04:05+00:00", "2026-01-02T03:04:05+00:00"),
        ('{"a":-1}', '{"a":-1}'),
    ],
)
def test_given_a_cell_when_neutralised_then_a_formula_start_gets_a_quote(cell: str, shown: str):
    assert neutralise_cell(cell) == shown


@pytest.mark.parametrize(
    "cell", ["=1", "+1", "-1", "@a", "\tx", "\rx", "'=1", "''@", "'a", "'", "''", "", "ok"]
)
def test_given_a_neutralised_cell_when_restored_then_the_original_value(cell: str):
    assert restore_cell(neutralise_cell(cell)) == cell


@pytest.mark.parametrize(
    ("rows", "text"),
    [
        ([["a", "b"]], "a,b\r\n"),
        ([["a", None, ""]], "a,,\r\n"),
        ([["a,b", "c"]], '"a,b",c\r\n'),
        ([['say "hi"']], '"say ""hi"""\r\n'),
        ([["one\ntwo"]], '"one\ntwo"\r\n'),
        ([["one\r\ntwo"]], '"one\r\ntwo"\r\n'),
        ([["cr\r"]], '"cr\r"\r\n'),
        ([[" padded "]], " padded \r\n"),
        ([["ü ✓"]], "ü ✓\r\n"),
        ([["=1,2"]], '"\'=1,2"\r\n'),
        ([["a"], ["b"]], "a\r\nb\r\n"),
        ([], ""),
    ],
)
def test_given_rows_when_written_then_rfc_4180_records(rows: list[list[str | None]], text: str):
    assert csv_records(rows) == text


def test_given_awkward_cells_when_written_and_read_back_then_the_same_cells():
    rows = [['a,"b"\r\nc', "d\ne", "", "ü", "x" * 1000]]

    back = list(csv.reader(io.StringIO(csv_records(rows), newline=""), strict=True))

    assert back == rows
