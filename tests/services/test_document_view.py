"""One document as the review widgets read it: values (as corrected), evidence spans and boxes,
page texts and images, flags, and who may read them."""

from __future__ import annotations

import base64

import pytest

from batchnb.errors import NotFoundError, PermissionDeniedError
from batchnb.queue.worker import Worker
from batchnb.services.batches import Batch
from batchnb.services.document_view import (
    document_content,
    document_page_image,
    result_annotations,
)
from batchnb.services.review import correct_value, mark_reviewed
from batchnb.services.submit import submit
from batchnb.services.workspace import Workspace

from .conftest import SAMPLES

PROMPT = "invoice number, date, total, vendor, line items (description, quantity, amount)"
PDF = "bluefin-office-supplies-invoice.pdf"
TEXT = "maplewood-print-invoice.txt"
MARKDOWN = "copperleaf-web-invoice.md"


@pytest.fixture
def batch(workspace: Workspace, worker: Worker) -> Batch:
    found = submit(
        [
            SAMPLES / PDF,
            SAMPLES / TEXT,
            SAMPLES / MARKDOWN,
            ("broken.pdf", b"%PDF-1.7\n1 0 obj << /Type /Catalog >> garbage without xref"),
        ],
        PROMPT,
        rules=[{"required": ["vendor"]}],
        workspace=workspace,
    )
    found.wait(timeout=60)
    return found


def _document(batch: Batch, file_name: str) -> int:
    results = batch.results().set_index("file_name")
    return int(results.loc[file_name, "document_id"])


def test_a_pdf_value_has_its_span_and_its_box_on_the_page(
    workspace: Workspace, batch: Batch
) -> None:
    content = document_content(_document(batch, PDF), workspace=workspace)
    assert (content.file_name, content.file_type, content.status) == (PDF, "pdf", "completed")
    assert len(content.pages) == 1 and content.pages[0].has_image
    number = content.field("invoice_number")
    assert number.value == "BOS-2024-0117"
    assert number.confidence is not None and 0 < number.confidence <= 1
    evidence = number.evidence
    assert evidence is not None and evidence.page == 1
    assert evidence.start is not None and evidence.end is not None
    # The span indexes the page text the extractor read ...
    assert content.pages[0].text[evidence.start : evidence.end] == "BOS-2024-0117"
    # ... and its box sits where the number is printed: one line, upper right of the page.
    assert len(evidence.boxes) == 1
    x0, y0, x1, y1 = evidence.boxes[0]
    assert 0.5 < x0 < x1 < 1 and 0 < y0 < y1 < 0.2
    assert (x1 - x0) > (y1 - y0)  # a word is wider than high


def test_an_array_field_read_from_a_pdf_table_has_a_span_in_the_text(
    workspace: Workspace, batch: Batch
) -> None:
    content = document_content(_document(batch, PDF), workspace=workspace)
    items = content.field("line_items")
    assert isinstance(items.value, list) and len(items.value) == 4
    assert [spec["name"] for spec in items.item_fields] == ["description", "quantity", "amount"]
    # Parsed with the batch's tables, as the worker did: the span is the table in the text.
    assert items.evidence is not None and items.evidence.start is not None
    page = content.pages[0].text
    assert "Recycled copy paper" in page[items.evidence.start : items.evidence.end]


def test_text_documents_have_spans_but_no_image(workspace: Workspace, batch: Batch) -> None:
    document_id = _document(batch, TEXT)
    content = document_content(document_id, workspace=workspace)
    assert not content.pages[0].has_image
    total = content.field("total")
    assert total.evidence is not None and total.evidence.boxes == ()
    assert document_page_image(document_id, 1, workspace=workspace) is None


def test_missing_values_have_no_evidence_and_rules_flag_them(
    workspace: Workspace, batch: Batch
) -> None:
    content = document_content(_document(batch, MARKDOWN), workspace=workspace)
    vendor = content.field("vendor")
    assert vendor.value is None and vendor.evidence is None and not vendor.found
    assert any("vendor" in message for message in vendor.flags)
    assert any(flag["field"] == "vendor" for flag in content.flags)


def test_a_pdf_page_is_drawn_as_png(workspace: Workspace, batch: Batch) -> None:
    image = document_page_image(_document(batch, PDF), 1, workspace=workspace)
    assert image is not None and image.number == 1
    assert image.width == 1000 and image.height > image.width  # a portrait page
    header, data = image.data_url.split(",", 1)
    assert header == "data:image/png;base64"
    assert base64.b64decode(data).startswith(b"\x89PNG")


def test_corrections_show_as_corrected_with_the_extracted_value(
    workspace: Workspace, batch: Batch
) -> None:
    document_id = _document(batch, PDF)
    correct_value(document_id, "total", "1300", workspace=workspace)
    correct_value(document_id, "total", "1400", workspace=workspace)
    correct_value(document_id, "line_items.1.quantity", "11", workspace=workspace)
    mark_reviewed(document_id, workspace=workspace)
    content = document_content(document_id, workspace=workspace)
    total = content.field("total")
    assert total.value == {"amount": 1400.0, "currency": "USD"}
    assert total.corrected and total.original == {"amount": 1234.5, "currency": "USD"}
    items = content.field("line_items")
    assert items.corrected_paths == ("line_items.1.quantity",) and not items.original
    assert isinstance(items.value, list) and items.value[1]["quantity"] == 11.0
    assert items.item_originals == {"line_items.1.quantity": 10.0}
    assert not content.field("date").corrected
    assert content.reviewed


def test_a_failed_document_shows_its_error_and_no_fields(
    workspace: Workspace, batch: Batch
) -> None:
    content = document_content(_document(batch, "broken.pdf"), workspace=workspace)
    assert content.status == "failed" and content.error
    assert content.fields == ()
    assert content.problem is not None and "cannot be read" in content.problem


def test_annotations_give_confidence_evidence_and_flags_per_document(
    workspace: Workspace, batch: Batch
) -> None:
    ids = [_document(batch, name) for name in (PDF, MARKDOWN, "broken.pdf")]
    found = result_annotations(ids, workspace=workspace)
    assert set(found) == set(ids[:2])  # the failed one has no result
    pdf = found[ids[0]]
    assert pdf.confidence["invoice_number"] is not None and pdf.grounded["invoice_number"]
    assert not pdf.flags
    markdown = found[ids[1]]
    assert markdown.confidence["vendor"] is None and not markdown.grounded["vendor"]
    assert [flag["field"] for flag in markdown.flags] == ["vendor"]


def test_only_the_owner_or_an_admin_reads_a_document(workspace: Workspace, batch: Batch) -> None:
    document_id = _document(batch, PDF)
    with pytest.raises(PermissionDeniedError, match="may not view"):
        document_content(document_id, workspace=workspace, actor="mallory")
    with pytest.raises(PermissionDeniedError):
        document_page_image(document_id, 1, workspace=workspace, actor="mallory")
    with pytest.raises(PermissionDeniedError):
        result_annotations([document_id], workspace=workspace, actor="mallory")
    with pytest.raises(NotFoundError, match="document 99999"):
        document_content(99999, workspace=workspace)


def _two_page_pdf() -> bytes:
    """A blank page, then the Bluefin invoice: its values are found on page 2."""
    import io

    import pypdfium2

    invoice = pypdfium2.PdfDocument(str(SAMPLES / PDF))
    combined = pypdfium2.PdfDocument.new()
    combined.new_page(612, 792)
    combined.import_pages(invoice)
    buffer = io.BytesIO()
    combined.save(buffer)
    return buffer.getvalue()


def _invoice_png() -> bytes:
    import pypdfium2

    from batchnb.documents.previews import pdf_page_png

    page = pypdfium2.PdfDocument(str(SAMPLES / PDF))[0]
    return pdf_page_png(page, 200 / 72)[0]


def test_evidence_on_a_later_page_points_there(workspace: Workspace, worker: Worker) -> None:
    batch = submit([("two-pages.pdf", _two_page_pdf())], "invoice number", workspace=workspace)
    batch.wait(timeout=60)
    content = document_content(_document(batch, "two-pages.pdf"), workspace=workspace)
    assert [page.number for page in content.pages] == [1, 2]
    number = content.field("invoice_number")
    assert number.evidence is not None and number.evidence.page == 2
    assert len(number.evidence.boxes) == 1
    image = document_page_image(content.document_id, 2, workspace=workspace)
    assert image is not None and image.number == 2


def test_an_image_read_by_ocr_has_boxes_from_its_words(
    workspace: Workspace, worker: Worker
) -> None:
    pytest.importorskip("pytesseract", reason="OCR is an extra: pip install 'batchnb[ocr]'")
    batch = submit([("scan.png", _invoice_png())], "invoice number", workspace=workspace)
    batch.wait(timeout=120)
    document_id = _document(batch, "scan.png")
    content = document_content(document_id, workspace=workspace)
    if content.status != "completed":
        pytest.skip(f"OCR is not available here: {content.error}")
    number = content.field("invoice_number")
    assert number.value == "BOS-2024-0117"
    assert number.evidence is not None and len(number.evidence.boxes) == 1
    x0, y0, x1, y1 = number.evidence.boxes[0]
    assert 0.5 < x0 < x1 < 1 and 0 < y0 < y1 < 0.2  # where the PDF's text layer puts it
    image = document_page_image(document_id, 1, workspace=workspace)
    assert image is not None and image.data_url.startswith("data:image/png;base64,")
