"""Excel workbooks and CSV files: a page and a table per sheet, values as text, and limits."""

from __future__ import annotations

import datetime as dt
import io
import zipfile

import openpyxl
import pytest

from batchnb.documents import PARSER_VERSION, parse_document
from batchnb.documents import spreadsheets as spreadsheets_module
from batchnb.errors import DocumentError

from .grounding import assert_table_grounded


def _save(workbook: openpyxl.Workbook) -> bytes:
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


@pytest.fixture
def invoices_xlsx() -> bytes:
    """Two sheets: invoices (numbers, dates, a blank row, stray empty cells) and notes."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "Invoices"
    sheet.append([])  # a leading empty row is skipped
    sheet.append(["Number", "Date", "Total", "Paid"])
    sheet.append(["INV-1", dt.date(2024, 3, 1), 120.5, True])
    sheet.append(["INV-2", dt.datetime(2024, 3, 2, 14, 30), 99.0, False])
    sheet.append([])
    sheet.append(["INV-3", None, 0.1 + 0.2, None])
    # Cells that were formatted but left empty: trailing rows and columns to trim.
    sheet["H12"] = None
    sheet["F20"] = ""
    notes = workbook.create_sheet("Notes")
    notes["A1"] = "Paid by\tcard"
    notes["B1"] = "multi\nline"
    notes["A2"] = 42
    workbook.create_sheet("Empty")
    return _save(workbook)


def test_xlsx_one_page_and_table_per_sheet(invoices_xlsx: bytes) -> None:
    parsed = parse_document(invoices_xlsx, "xlsx")
    assert parsed.parser == PARSER_VERSION["xlsx"] == "openpyxl-2"
    assert parsed.metadata == {"sheets": "3"}
    invoices, notes, empty = parsed.pages
    assert [page.number for page in parsed.pages] == [1, 2, 3]
    assert invoices.text == (
        "Sheet: Invoices\n"
        "Number\tDate\tTotal\tPaid\n"
        "INV-1\t2024-03-01\t120.5\tTRUE\n"
        "INV-2\t2024-03-02 14:30:00\t99\tFALSE\n"
        "\t\t\t\n"
        "INV-3\t\t0.3\t"
    )
    (table,) = invoices.tables
    assert table.header == ("Number", "Date", "Total", "Paid")
    assert table.rows == (
        ("INV-1", "2024-03-01", "120.5", "TRUE"),
        ("INV-2", "2024-03-02 14:30:00", "99", "FALSE"),
        ("", "", "", ""),
        ("INV-3", "", "0.3", ""),
    )
    assert_table_grounded(invoices, table)
    assert table.start == len("Sheet: Invoices\n")
    assert table.end == len(invoices.text)

    assert notes.text == "Sheet: Notes\nPaid by card\tmulti line\n42\t"
    assert notes.tables[0].header == ("Paid by card", "multi line")
    assert notes.tables[0].rows == (("42", ""),)
    assert_table_grounded(notes, notes.tables[0])

    assert empty.text == "Sheet: Empty"
    assert empty.tables == ()
    assert "\f" not in invoices.text + notes.text


def test_empty_workbook() -> None:
    workbook = openpyxl.Workbook()
    workbook.create_sheet("Second")
    with pytest.raises(
        DocumentError, match=r"the Excel workbook is empty \(no text in any sheet\)"
    ):
        parse_document(_save(workbook), "xlsx")


def test_too_many_cells_in_a_sheet(monkeypatch: pytest.MonkeyPatch, invoices_xlsx: bytes) -> None:
    monkeypatch.setattr(spreadsheets_module, "MAX_CELLS_PER_SHEET", 10)
    with pytest.raises(
        DocumentError,
        match=r"too many cells in sheet 'Invoices' of the Excel workbook \(the limit is 10\)",
    ):
        parse_document(invoices_xlsx, "xlsx")


def test_too_many_cells_in_a_workbook(
    monkeypatch: pytest.MonkeyPatch, invoices_xlsx: bytes
) -> None:
    # The first sheet fits (it has 6 rows of up to 4 cells); the second goes over the total.
    monkeypatch.setattr(spreadsheets_module, "MAX_CELLS_PER_WORKBOOK", 22)
    with pytest.raises(
        DocumentError, match=r"too many cells in the Excel workbook \(the limit is 22\)"
    ):
        parse_document(invoices_xlsx, "xlsx")


def test_a_far_away_cell_stops_at_the_cell_limit() -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet["A1"] = "top"
    sheet["A1000000"] = "bottom"  # a million rows, almost all empty
    with pytest.raises(DocumentError, match="too many cells in sheet 'Sheet'"):
        parse_document(_save(workbook), "xlsx")


@pytest.mark.parametrize("cut", [0.5, 0.95])
def test_truncated_xlsx(invoices_xlsx: bytes, cut: float) -> None:
    with pytest.raises(DocumentError, match="not a readable Excel workbook: the file is corrupt"):
        parse_document(invoices_xlsx[: int(len(invoices_xlsx) * cut)], "xlsx")


def test_zip_that_is_not_a_workbook() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "hello")
    with pytest.raises(DocumentError, match="not a readable Excel workbook: "):
        parse_document(buffer.getvalue(), "xlsx")


def test_encrypted_xlsx_is_an_ole2_file() -> None:
    data = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(4096)
    with pytest.raises(DocumentError, match="Excel workbook is encrypted/password-protected"):
        parse_document(data, "xlsx")


def test_xlsx_zip_bomb() -> None:
    buffer = io.BytesIO()
    chunk = bytes(1024 * 1024)
    with (
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
        archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as stream,
    ):
        for _ in range(210):
            stream.write(chunk)
    with pytest.raises(DocumentError, match="Excel workbook is too large when unpacked: 210 MiB"):
        parse_document(buffer.getvalue(), "xlsx")


def test_csv_semicolons_and_quotes() -> None:
    data = (
        'Nummer;Kunde;Betrag\r\nINV-1;"Müller; Söhne";"1.234,50"\r\n'
        'INV-2;"Say ""hi""";"7,00"\r\n\r\n'
    ).encode("cp1252")
    parsed = parse_document(data, "csv")
    assert parsed.parser == PARSER_VERSION["csv"] == "csv-2"
    assert parsed.metadata == {"encoding": "cp1252", "delimiter": ";"}
    (page,) = parsed.pages
    assert page.text == (
        'Nummer\tKunde\tBetrag\nINV-1\tMüller; Söhne\t1.234,50\nINV-2\tSay "hi"\t7,00'
    )
    (table,) = page.tables
    assert table.header == ("Nummer", "Kunde", "Betrag")
    assert table.rows == (("INV-1", "Müller; Söhne", "1.234,50"), ("INV-2", 'Say "hi"', "7,00"))
    assert (table.start, table.end) == (0, len(page.text))
    assert_table_grounded(page, table)


def test_csv_quoted_line_break_and_ragged_rows() -> None:
    parsed = parse_document(b'a,b,c\n1,"two\nlines"\n3\n', "csv")
    (table,) = parsed.pages[0].tables
    assert table.rows == (("1", "two lines", ""), ("3", "", ""))
    assert parsed.metadata["delimiter"] == ","


def test_csv_falls_back_to_comma() -> None:
    parsed = parse_document(b"just one column\n", "csv")
    assert parsed.text == "just one column"
    assert parsed.metadata["delimiter"] == ","


def test_csv_only_empty_cells() -> None:
    with pytest.raises(DocumentError, match=r"the CSV file is empty \(no text\)"):
        parse_document(b",,\n , \n", "csv")


def test_csv_too_many_cells(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spreadsheets_module, "MAX_CELLS_PER_WORKBOOK", 5)
    with pytest.raises(DocumentError, match=r"too many cells in the CSV file \(the limit is 5\)"):
        parse_document(b"a,b\n1,2\n3,4\n", "csv")
