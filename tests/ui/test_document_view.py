"""The document view's state: fields with evidence, pages with marked text, the page image,
jumps, corrections and review marks, on real batches processed by a real worker."""

from __future__ import annotations

import pytest

from batchnb.queue.worker import Worker
from batchnb.services.batches import Batch
from batchnb.services.review import list_corrections, review_status
from batchnb.services.submit import submit
from batchnb.services.workspace import Workspace
from batchnb.ui import DocumentView
from tests.conftest import SAMPLES

PROMPT = "invoice number, date, total, vendor, line items (description, quantity, amount)"
PDF = "bluefin-office-supplies-invoice.pdf"
TEXT = "maplewood-print-invoice.txt"


@pytest.fixture
def batch(workspace: Workspace, worker: Worker) -> Batch:
    found = submit([SAMPLES / PDF, SAMPLES / TEXT], PROMPT, workspace=workspace)
    found.wait(timeout=60)
    return found


def _view(batch: Batch, file_name: str, **options: object) -> DocumentView:
    results = batch.results().set_index("file_name")
    document_id = int(results.loc[file_name, "document_id"])
    return DocumentView(document_id, workspace=batch.workspace, **options)  # type: ignore[arg-type]


def _field(view: DocumentView, name: str) -> dict:
    return next(field for field in view.fields if field["name"] == name)


def test_a_pdf_shows_its_page_boxes_and_marked_text(workspace: Workspace, batch: Batch) -> None:
    view = _view(batch, PDF)
    assert not view.loading and view.message == ""
    assert view.document["file_name"] == PDF and view.document["page_count"] == 1
    assert view.image["url"].startswith("data:image/png;base64,")
    assert view.image["width"] == 1000
    number = _field(view, "invoice_number")
    assert number["text"] == "BOS-2024-0117" and number["confidence"] == "90%"
    assert number["evidence"]["page"] == 1 and len(number["evidence"]["boxes"]) == 1
    # The page text marks each value's span, as the prompt editor's preview does.
    html = view.pages[0]["html"]
    assert "data-field='invoice_number'" in html and ">BOS-2024-0117</mark>" in html
    total = _field(view, "total")
    assert total["text"] == "1,234.50 USD" and total["edit"] == "USD 1234.50"
    items = _field(view, "line_items")
    assert [c["name"] for c in items["columns"]] == ["description", "quantity", "amount"]
    assert items["items"][2]["amount"]["path"] == "line_items.2.amount"
    assert items["items"][2]["amount"]["text"] == "430.00 USD"


def test_low_confidence_and_missing_evidence_are_marked(workspace: Workspace, batch: Batch) -> None:
    view = _view(batch, TEXT, low_confidence=0.95)
    assert all(field["low"] for field in view.fields if field["confidence"])
    relaxed = _view(batch, TEXT, low_confidence=0.1)
    assert not any(field["low"] for field in relaxed.fields)
    vendor = _field(view, "vendor")
    if vendor["found"]:  # the offline extractor may or may not ground the vendor
        assert vendor["evidence"] is not None or vendor["text"]
    items = _field(view, "line_items")
    assert items["items"] == [] or items["evidence"] is not None
    assert view.image == {}  # text: no page image
    assert not view.pages[0]["has_image"]


def test_show_field_turns_to_its_page_and_asks_for_a_flash(
    workspace: Workspace, batch: Batch
) -> None:
    view = _view(batch, PDF)
    view.show_field("total")
    assert view.page == 1 and view.focus == {"name": "total", "count": 1}
    view.show_field("total")  # the same field again flashes again
    assert view.focus["count"] == 2
    with pytest.raises(KeyError, match="no field 'nope'"):
        view.show_field("nope")


def test_corrections_and_review_marks_are_stored_and_shown(
    workspace: Workspace, batch: Batch
) -> None:
    view = _view(batch, PDF)
    changed: list[DocumentView] = []
    view.on_change(changed.append)
    assert view.correct("total", "not money") is None
    assert "is not a money" in view.edit_errors["total"]
    assert changed == []

    correction = view.correct("total", "1300")
    assert correction is not None and correction.old_value["amount"] == 1234.5
    assert "total" not in view.edit_errors
    assert view.message == "total corrected: 1,234.50 USD → 1,300.00 USD"
    total = _field(view, "total")
    assert total["corrected"] and total["text"] == "1,300.00 USD"
    assert total["original"] == "1,234.50 USD"
    view._handle_message(None, {"type": "edit", "path": "line_items.1.quantity", "value": "9"}, [])
    cell = _field(view, "line_items")["items"][1]["quantity"]
    assert cell["corrected"] and cell["text"] == "9" and cell["original"] == "10"
    assert [c.field for c in list_corrections(batch_id=batch.id, workspace=workspace)] == [
        "line_items.1.quantity",
        "total",
    ]

    view._handle_message(None, {"type": "review", "reviewed": True}, [])
    assert view.document["reviewed"] and view.message == "marked reviewed"
    assert review_status(batch.id, workspace=workspace).reviewed == 1
    assert len(changed) == 3


def test_another_user_is_refused_and_nothing_changes(workspace: Workspace, batch: Batch) -> None:
    view = _view(batch, PDF)
    view.actor = "mallory"
    assert view.correct("total", "1") is None
    assert "may not" in view.edit_errors["total"]
    assert not view.set_reviewed()
    assert "may not" in view.message
    assert list_corrections(batch_id=batch.id, workspace=workspace) == []
    stranger = _view(batch, PDF, actor="mallory")
    assert stranger.fields == [] and "may not view" in stranger.message


def test_pages_turn_and_a_field_turns_to_its_page(workspace: Workspace, worker: Worker) -> None:
    import io

    import pypdfium2

    combined = pypdfium2.PdfDocument.new()
    combined.new_page(612, 792)
    combined.import_pages(pypdfium2.PdfDocument(str(SAMPLES / PDF)))
    buffer = io.BytesIO()
    combined.save(buffer)
    batch = submit([("two-pages.pdf", buffer.getvalue())], "invoice number", workspace=workspace)
    batch.wait(timeout=60)
    view = _view(batch, "two-pages.pdf")
    assert view.page == 1 and view.document["page_count"] == 2
    first_image = view.image["url"]
    assert "data-field" not in view.pages[0]["html"]  # nothing found on the blank page
    view.show_field("invoice_number")
    assert view.page == 2 and view.focus["name"] == "invoice_number"
    assert view.image["url"] and view.image["url"] != first_image
    assert "data-field='invoice_number'" in view.pages[1]["html"]
    view.page = 1
    assert view.image["url"] == first_image
