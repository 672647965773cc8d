"""Tables read from PDFs: ruled grids, borderless item tables, and their place in the page text."""

from __future__ import annotations

import io

import pytest
from reportlab.pdfgen import canvas

from batchnb.documents.parsers import parse_document
from batchnb.documents.pdf_tables import MAX_TABLE_PAGES, clean_table, find_tables
from batchnb.documents.text import PDF_TABLES_VERSION

RULED = [
    ["Item", "Qty", "Price"],
    ["Widget", "2", "5.00"],
    ["Gadget", "1", "12.50"],
]
ITEMS = [
    ("Description", "Qty", "Unit price", "Amount"),
    ("Consulting services", "3", "100.00", "300.00"),
    ("Travel expenses", "1", "45.50", "45.50"),
    ("Printed manuals", "10", "2.00", "20.00"),
]
COLUMNS = (72, 300, 360, 460)


def ruled_pdf() -> bytes:
    """A page with a short text and a 3 x 3 table drawn with lines around every cell."""
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    pdf.drawString(72, 760, "Order confirmation")
    xs, top, height = [72, 222, 302, 402], 700, 20
    for row, cells in enumerate(RULED):
        for col, cell in enumerate(cells):
            pdf.drawString(xs[col] + 4, top - height * row - 14, cell)
    for row in range(len(RULED) + 1):
        pdf.line(xs[0], top - height * row, xs[-1], top - height * row)
    for x in xs:
        pdf.line(x, top, x, top - height * len(RULED))
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def borderless_pdf(*, wrapped: bool = False, pages: int = 1) -> bytes:
    """An invoice whose item table has a header and aligned columns but no lines."""
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    for _ in range(pages):
        pdf.drawString(72, 760, "ACME Ltd")
        pdf.drawString(72, 744, "Invoice Number: INV-7")
        y = 680
        for index, cells in enumerate(ITEMS):
            for x, cell in zip(COLUMNS, cells, strict=True):
                pdf.drawString(x, y, cell)
            y -= 16
            if wrapped and index == 1:
                pdf.drawString(COLUMNS[0], y, "(April, on site)")
                y -= 16
        pdf.drawString(360, y - 8, "Total")
        pdf.drawString(460, y - 8, "365.50")
        pdf.drawString(72, y - 120, "Thank you for your business")
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def test_ruled_table_is_read_exactly() -> None:
    assert find_tables(ruled_pdf(), [1]) == {1: [RULED]}


def test_borderless_item_table_from_its_header() -> None:
    assert find_tables(borderless_pdf(), [1]) == {1: [[list(row) for row in ITEMS]]}


def test_wrapped_description_joins_its_row() -> None:
    (table,) = find_tables(borderless_pdf(wrapped=True), [1])[1]
    assert table[1] == ["Consulting services (April, on site)", "3", "100.00", "300.00"]
    assert len(table) == len(ITEMS)


def test_page_without_a_table() -> None:
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    pdf.drawString(72, 720, "Dear customer, thank you for your order.")
    pdf.showPage()
    pdf.save()
    assert find_tables(buffer.getvalue(), [1, 5]) == {}


def test_pages_are_bounded() -> None:
    data = borderless_pdf(pages=MAX_TABLE_PAGES + 2)
    found = find_tables(data, range(1, MAX_TABLE_PAGES + 3))
    assert sorted(found) == list(range(1, MAX_TABLE_PAGES + 1))


def test_clean_table_drops_empty_rows_and_columns() -> None:
    raw = [["  Item ", None, "Qty"], [None, None, None], ["Two\nlines", "", " 2 "]]
    assert clean_table(raw) == [["Item", "Qty"], ["Two lines", "2"]]


@pytest.mark.parametrize("data", [ruled_pdf(), borderless_pdf(wrapped=True)])
def test_tables_follow_the_unchanged_text_layer(data: bytes) -> None:
    plain = parse_document(data, "pdf")
    parsed = parse_document(data, "pdf", tables=True)
    (page,) = parsed.pages
    (table,) = page.tables
    assert page.text.startswith(plain.pages[0].text + "\n\n")
    assert page.text[table.start : table.end] == table.text
    assert page.text.endswith(table.text)
    assert table.header is not None and len(table.rows) >= 2
    assert parsed.parser == f"{plain.parser}+{PDF_TABLES_VERSION}"
    assert parsed.metadata == plain.metadata


def test_default_parse_has_no_tables() -> None:
    data = borderless_pdf()
    default = parse_document(data, "pdf")
    assert default == parse_document(data, "pdf", tables=False)
    assert all(not page.tables for page in default.pages)
    assert "\t" not in default.text


def test_tables_flag_is_ignored_by_other_kinds() -> None:
    data = b"Description\tQty\nWidget\t2\n"
    assert parse_document(data, "text", tables=True) == parse_document(data, "text")
