"""Line items from item tables in DOCX, XLSX, CSV and HTML files, none marked as header.

The files are built the way people make them: a Word table without "repeat as header row", a
sheet with the seller's details above its item table, a plain CSV export, an HTML table of
``<td>`` cells. Each goes through ``parse_document`` and the offline extractor, and once through
the whole service with the "auto" strategy.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from pathlib import Path

import docx
import openpyxl
import pytest
from sqlalchemy import select

from batchnb.db.models import Document, ExtractedData
from batchnb.documents import parse_document
from batchnb.extract import OfflineExtractor, schema_from_prompt
from batchnb.services.submit import submit
from batchnb.services.workspace import Workspace, open_workspace

ROWS = [
    ("Description", "Qty", "Unit price", "Amount"),
    ("Website redesign", "18", "€75.00", "€1,350.00"),
    ("Booking calendar", "6", "€75.00", "€450.00"),
    ("Hosting (1 year)", "1", "€120.00", "€120.00"),
    ("Total", "", "", "€1,920.00"),
]
HEADING = [("Copperleaf Web Studio",), ("Invoice number", "INV-77"), ("Date", "2024-05-02")]
EXPECTED = [
    {
        "description": description,
        "quantity": quantity,
        "unit_price": {"amount": price, "currency": "EUR"},
        "amount": {"amount": amount, "currency": "EUR"},
    }
    for description, quantity, price, amount in [
        ("Website redesign", 18.0, 75.0, 1350.0),
        ("Booking calendar", 6.0, 75.0, 450.0),
        ("Hosting (1 year)", 1.0, 120.0, 120.0),
    ]
]
PROMPT = "invoice number, line items (description, quantity, unit price, amount)"


def invoice_docx() -> bytes:
    """Paragraphs, then the item table with no row marked as header (Word's default)."""
    document = docx.Document()
    for cells in HEADING:
        document.add_paragraph(": ".join(cells))
    table = document.add_table(rows=len(ROWS), cols=len(ROWS[0]))
    for row, cells in zip(table.rows, ROWS, strict=True):
        for cell, text in zip(row.cells, cells, strict=True):
            cell.text = text
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def invoice_xlsx() -> bytes:
    """One sheet: the seller and invoice details, a blank row, then the item table."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    for cells in [*HEADING, (), *ROWS]:
        sheet.append(list(cells))
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def items_csv() -> bytes:
    """An exported item list: the table alone, semicolon-separated."""
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=";").writerows(ROWS)
    return buffer.getvalue().encode()


def invoice_html() -> bytes:
    """Paragraphs, then the item table with <td> cells only (no <th>, no <thead>)."""
    heading = "".join(f"<p>{': '.join(cells)}</p>" for cells in HEADING)
    rows = "".join(
        "<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>" for cells in ROWS
    )
    return f"<html><body>{heading}<table>{rows}</table></body></html>".encode()


FILES: dict[str, Callable[[], bytes]] = {
    "docx": invoice_docx,
    "xlsx": invoice_xlsx,
    "csv": items_csv,
    "html": invoice_html,
}


@pytest.mark.parametrize("kind", FILES)
def test_line_items_from_unmarked_tables(kind: str) -> None:
    document = parse_document(FILES[kind](), kind)
    result = OfflineExtractor().extract(document, schema_from_prompt(PROMPT))
    assert result.data()["line_items"] == EXPECTED
    found = result.values["line_items"]
    assert found is not None and found.page is not None and found.start is not None
    assert document.pages[found.page - 1].text[found.start : found.end] == found.raw
    if kind != "csv":  # the CSV file holds only its table
        assert result.data()["invoice_number"] == "INV-77"


def test_line_items_without_naming_their_columns() -> None:
    document = parse_document(invoice_docx(), "docx")
    result = OfflineExtractor().extract(document, schema_from_prompt("invoice number, line items"))
    assert result.data()["line_items"] == EXPECTED


@pytest.fixture
def inline(tmp_path: Path) -> Iterator[Workspace]:
    """Every document runs inside submit (Huey's immediate mode)."""
    workspace = open_workspace(home=str(tmp_path / "h"), queue_url="memory://")
    yield workspace
    workspace.close()


def test_auto_strategy_gives_the_items_of_every_format(inline: Workspace) -> None:
    files = [(f"invoice.{kind}", make()) for kind, make in FILES.items()]
    batch = submit(files, strategy="auto", workspace=inline)
    with inline.db.read() as session:
        rows = session.execute(
            select(Document.file_name, ExtractedData.data, ExtractedData.evidence)
            .join(ExtractedData, ExtractedData.document_id == Document.id)
            .where(Document.batch_id == batch.id)
        ).all()
    assert sorted(name for name, _, _ in rows) == sorted(name for name, _ in files)
    for name, data, evidence in rows:
        assert data["line_items"] == EXPECTED, name
        # The CSV is a bare item list: no invoice words, so the fallback template reads it.
        expected_type = "other" if name.endswith(".csv") else "invoice"
        assert evidence["_document"]["type"] == expected_type, name
