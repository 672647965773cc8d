"""Line items read by the offline extractor from a PDF's borderless item table."""

from __future__ import annotations

import io

from reportlab.pdfgen import canvas

from batchnb.documents.parsers import parse_document
from batchnb.extract import OfflineExtractor, schema_from_prompt

PROMPT = "invoice number and line items (description, quantity, unit price, amount)"


def invoice_pdf() -> bytes:
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    pdf.drawString(72, 760, "ACME Ltd")
    pdf.drawString(72, 744, "Invoice Number: INV-7")
    rows = [
        ("Description", "Qty", "Unit price", "Amount"),
        ("Consulting services", "3", "100.00", "300.00"),
        ("Printed manuals", "10", "2.00", "20.00"),
    ]
    for index, cells in enumerate(rows):
        for x, cell in zip((72, 300, 360, 460), cells, strict=True):
            pdf.drawString(x, 680 - 16 * index, cell)
    pdf.drawString(360, 620, "Total")
    pdf.drawString(460, 620, "320.00")
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def test_line_items_from_a_pdf_table() -> None:
    document = parse_document(invoice_pdf(), "pdf", tables=True)
    schema = schema_from_prompt(PROMPT)
    (field,) = (f for f in schema.fields if f.type == "array")
    result = OfflineExtractor().extract(document, schema)
    found = result.values[field.name]
    assert found is not None and found.page == 1
    assert found.start is not None and found.end is not None
    assert document.pages[0].text[found.start : found.end] == found.raw
    assert result.values["invoice_number"] is not None
    assert result.values["invoice_number"].value == "INV-7"
    assert result.data()[field.name] == [
        {
            "description": "Consulting services",
            "quantity": 3.0,
            "unit_price": {"amount": 100.0, "currency": None},
            "amount": {"amount": 300.0, "currency": None},
        },
        {
            "description": "Printed manuals",
            "quantity": 10.0,
            "unit_price": {"amount": 2.0, "currency": None},
            "amount": {"amount": 20.0, "currency": None},
        },
    ]
    assert "Printed manuals" in found.raw and "Total" not in found.raw


def test_without_tables_the_array_is_not_found() -> None:
    document = parse_document(invoice_pdf(), "pdf")
    schema = schema_from_prompt(PROMPT)
    (field,) = (f for f in schema.fields if f.type == "array")
    assert OfflineExtractor().extract(document, schema).values[field.name] is None


def test_header_fields_ignore_the_appended_tables() -> None:
    schema = schema_from_prompt("invoice number, total")
    plain = OfflineExtractor().extract(parse_document(invoice_pdf(), "pdf"), schema)
    with_tables = OfflineExtractor().extract(
        parse_document(invoice_pdf(), "pdf", tables=True), schema
    )
    assert with_tables.values == plain.values
