"""Word documents: body order, tables with offsets into the page text, and hostile files."""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Callable

import docx
import pytest
from docx.oxml import OxmlElement

from batchnb.documents import PARSER_VERSION, parse_document
from batchnb.documents import office as office_module
from batchnb.errors import DocumentError

from .grounding import assert_table_grounded

OLE2_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def _save(document: docx.document.Document) -> bytes:
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


@pytest.fixture
def invoice_docx() -> bytes:
    """Paragraphs, a table with a marked header row and a merged cell, then more text."""
    document = docx.Document()
    document.add_heading("Invoice INV-2024-001", level=1)
    document.add_paragraph("Invoice No: INV-2024-001")
    document.add_paragraph("")  # blank paragraphs are dropped
    table = document.add_table(rows=3, cols=3)
    for row, cells in zip(
        table.rows,
        [("Item", "Qty", "Price"), ("Tea\tgreen", "2", "3.50"), ("Total", "", "7.00")],
        strict=True,
    ):
        for cell, text in zip(row.cells, cells, strict=True):
            cell.text = text
    table.cell(2, 0).merge(table.cell(2, 1))
    table.rows[0]._tr.get_or_add_trPr().append(OxmlElement("w:tblHeader"))
    paragraph = document.add_paragraph("Due date: ")
    paragraph.add_run("2024-03-31").bold = True
    second = document.add_table(rows=1, cols=2)
    second.cell(0, 0).text = "Label"
    second.cell(0, 1).text = "Line one\nline two"
    return _save(document)


def test_docx_paragraphs_and_tables_in_body_order(invoice_docx: bytes) -> None:
    parsed = parse_document(invoice_docx, "docx")
    assert parsed.parser == PARSER_VERSION["docx"] == "python-docx-2"
    assert parsed.metadata == {"tables": "2"}
    (page,) = parsed.pages
    assert page.number == 1
    assert page.text == (
        "Invoice INV-2024-001\n"
        "Invoice No: INV-2024-001\n"
        "Item\tQty\tPrice\n"
        "Tea green\t2\t3.50\n"
        "Total\t7.00\n"
        "Due date: 2024-03-31\n"
        "Label\tLine one line two"
    )
    first, second = page.tables
    assert first.header == ("Item", "Qty", "Price")
    # The merged "Total" cell appears once, not once per column it spans.
    assert first.rows == (("Tea green", "2", "3.50"), ("Total", "7.00"))
    assert second.header is None
    assert second.rows == (("Label", "Line one line two"),)
    for table in page.tables:
        assert_table_grounded(page, table)
    assert page.text[first.start :].startswith("Item\tQty")
    assert page.text[: first.end].endswith("Total\t7.00")


def test_docx_table_first_in_body_starts_at_zero() -> None:
    document = docx.Document()
    table = document.add_table(rows=1, cols=2)
    table.cell(0, 0).text = "Amount"
    table.cell(0, 1).text = "12.00"
    (page,) = parse_document(_save(document), "docx").pages
    assert page.text == "Amount\t12.00"
    assert (page.tables[0].start, page.tables[0].end) == (0, len(page.text))


def test_docx_header_row_without_the_word_flag() -> None:
    """Few tables carry "repeat as header row": a first row reading like a header is one."""
    document = docx.Document()
    items = document.add_table(rows=2, cols=3)
    details = document.add_table(rows=2, cols=2)
    for table, rows in (
        (items, [("Description", "Qty", "Unit price"), ("Tea", "2", "3.50")]),
        (details, [("Name", "ACME Ltd"), ("City", "Leeds")]),
    ):
        for row, cells in zip(table.rows, rows, strict=True):
            for cell, text in zip(row.cells, cells, strict=True):
                cell.text = text
    (page,) = parse_document(_save(document), "docx").pages
    first, second = page.tables
    assert (first.header, first.rows) == (
        ("Description", "Qty", "Unit price"),
        (("Tea", "2", "3.50"),),
    )
    assert (second.header, second.rows) == (None, (("Name", "ACME Ltd"), ("City", "Leeds")))
    for table in page.tables:
        assert_table_grounded(page, table)


def test_empty_docx() -> None:
    document = docx.Document()
    document.add_paragraph("   ")
    document.add_table(rows=2, cols=2)
    with pytest.raises(DocumentError, match=r"the Word document is empty \(no text\)"):
        parse_document(_save(document), "docx")


@pytest.mark.parametrize("cut", [0.5, 0.9])
def test_truncated_docx(invoice_docx: bytes, cut: float) -> None:
    with pytest.raises(DocumentError, match="not a readable Word document: the file is corrupt"):
        parse_document(invoice_docx[: int(len(invoice_docx) * cut)], "docx")


def test_docx_without_its_main_part(make_zip: Callable[..., bytes]) -> None:
    # A ZIP that is not a Word document at all (no [Content_Types].xml, no document part).
    with pytest.raises(DocumentError, match="not a readable Word document: "):
        parse_document(make_zip({"hello.txt": b"hello"}), "docx")


def test_docx_with_malformed_xml(invoice_docx: bytes) -> None:
    source = zipfile.ZipFile(io.BytesIO(invoice_docx))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target:
        for member in source.infolist():
            data = source.read(member)
            if member.filename == "word/document.xml":
                data = data[: len(data) // 2]
            target.writestr(member, data)
    with pytest.raises(DocumentError, match="not a readable Word document: "):
        parse_document(buffer.getvalue(), "docx")


def test_encrypted_docx_is_an_ole2_file() -> None:
    with pytest.raises(DocumentError, match="encrypted/password-protected"):
        parse_document(OLE2_SIGNATURE + bytes(4096), "docx")


def _zip_bomb(member: str, megabytes: int) -> bytes:
    """A small ZIP whose one member unpacks to ``megabytes`` MiB of zeros, written in chunks."""
    buffer = io.BytesIO()
    chunk = bytes(1024 * 1024)
    with (
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
        archive.open(member, "w", force_zip64=True) as stream,
    ):
        for _ in range(megabytes):
            stream.write(chunk)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def big_bomb() -> bytes:
    return _zip_bomb("word/document.xml", 300)


def test_zip_bomb_fails_fast_on_declared_size(big_bomb: bytes) -> None:
    assert len(big_bomb) < 2 * 1024 * 1024
    started = time.perf_counter()
    with pytest.raises(DocumentError) as caught:
        parse_document(big_bomb, "docx")
    assert time.perf_counter() - started < 1.0
    assert str(caught.value) == (
        "the Word document is too large when unpacked: 300 MiB (the limit is 200 MiB); "
        "it may be a ZIP bomb"
    )


def test_zip_bomb_fails_on_compression_ratio() -> None:
    with pytest.raises(DocumentError, match="looks like a ZIP bomb") as caught:
        parse_document(_zip_bomb("word/document.xml", 20), "docx")
    assert "'word/document.xml' unpacks to" in str(caught.value)
    assert "(the limit is 100)" in str(caught.value)


def test_too_many_zip_members(monkeypatch: pytest.MonkeyPatch, invoice_docx: bytes) -> None:
    monkeypatch.setattr(office_module, "MAX_ZIP_MEMBERS", 3)
    with pytest.raises(DocumentError, match=r"parts \(the limit is 3\)"):
        parse_document(invoice_docx, "docx")
