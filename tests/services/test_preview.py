"""Previewing one document: the worker's own extraction, run now, with nothing stored."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont
from sqlalchemy import func, select

from batchnb import Preview, preview_extraction
from batchnb.db.models import Document, ExtractedData, ExtractionBatch, ExtractionJob, QueueItem
from batchnb.errors import DocumentError, IntakeError, SchemaError, UnknownExtractorError
from batchnb.extract.templates import builtin_templates
from batchnb.services.preview import classify_file
from batchnb.services.submit import submit
from batchnb.services.workspace import Workspace, open_workspace

from .conftest import SAMPLES

INVOICE_PDF = SAMPLES / "bluefin-office-supplies-invoice.pdf"
RECEIPT_PDF = SAMPLES / "harbor-lane-bakery-receipt.pdf"
TEXT_INVOICE = SAMPLES / "maplewood-print-invoice.txt"


def _printed(value: object) -> str:
    """How a value appears printed: money as 1,234.50, anything else as it is."""
    if isinstance(value, dict):
        return f"{value['amount']:,.2f}"
    return str(value)


def _row_counts(workspace: Workspace) -> dict[str, int]:
    with workspace.db.read() as session:
        return {
            model.__name__: session.scalar(select(func.count()).select_from(model)) or 0
            for model in (ExtractionBatch, Document, ExtractionJob, ExtractedData, QueueItem)
        }


def test_values_carry_spans_that_point_at_the_page_text(workspace: Workspace) -> None:
    preview = preview_extraction(
        INVOICE_PDF, prompt="invoice number, total, line items", workspace=workspace
    )

    assert isinstance(preview, Preview)
    assert preview.file_name == INVOICE_PDF.name
    assert preview.values["invoice_number"] == "BOS-2024-0117"
    assert preview.values["total"] == {"amount": 1234.5, "currency": "USD"}
    assert preview.field("line_items").type == "array"
    items = preview.values["line_items"]
    assert isinstance(items, list) and len(items) == 4
    for name in ("invoice_number", "total"):
        field = preview.field(name)
        evidence = field.evidence
        assert evidence is not None and evidence.start is not None
        printed = preview.page_text(evidence.page)[evidence.start : evidence.end]
        assert printed == evidence.raw
        assert _printed(field.value) in printed
        assert field.confidence is not None and 0 < field.confidence <= 1
    assert preview.document_type is None  # only "auto" classifies


def test_nothing_is_stored(workspace: Workspace) -> None:
    before = _row_counts(workspace)
    stored_before = sorted(p for p in workspace.settings.home.rglob("*") if p.is_file())

    preview_extraction(INVOICE_PDF, prompt="invoice number, total", workspace=workspace)
    preview_extraction(RECEIPT_PDF, strategy="auto", workspace=workspace)

    assert _row_counts(workspace) == before == dict.fromkeys(before, 0)
    stored_after = sorted(p for p in workspace.settings.home.rglob("*") if p.is_file())
    assert [p for p in stored_after if p not in stored_before and "sqlite" not in p.name] == []


def test_auto_classifies_first_and_says_which_template_it_chose(workspace: Workspace) -> None:
    preview = preview_extraction(RECEIPT_PDF, strategy="auto", workspace=workspace)

    assert preview.document_type == "receipt"
    assert preview.type_confidence is not None and preview.type_confidence > 0.5
    assert not preview.low_confidence
    assert preview.prompt == builtin_templates()["receipt"]
    assert "total" in preview.schema.names
    assert "type receipt" in repr(preview)
    assert classify_file(RECEIPT_PDF).type == "receipt"


def test_auto_uses_edited_templates(workspace: Workspace) -> None:
    preview = preview_extraction(
        INVOICE_PDF,
        strategy="auto",
        templates={"invoice": "invoice number, due date"},
        workspace=workspace,
    )

    assert preview.document_type == "invoice"
    assert preview.schema.names == ("invoice_number", "due_date")


def test_bytes_sources_and_one_files_own_prompt(workspace: Workspace) -> None:
    source = ("maplewood.txt", TEXT_INVOICE.read_bytes())

    preview = preview_extraction(
        source, prompt="invoice number", strategy="per_document", workspace=workspace
    )

    assert preview.file_name == "maplewood.txt"
    assert preview.values == {"invoice_number": "TXT-0042"}


def test_a_corrupt_pdf_is_a_document_error_naming_the_file(workspace: Workspace) -> None:
    with pytest.raises(DocumentError, match=r"broken\.pdf: not a readable PDF") as caught:
        preview_extraction(
            ("broken.pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog >>\ngarbage"),
            prompt="total",
            workspace=workspace,
        )
    assert caught.value.kind == "corrupt"


@pytest.mark.parametrize(
    ("source", "kind", "message"),
    [
        (("empty.txt", b""), "empty", "empty.txt is empty"),
        (("script.py", b"print('hi')\n"), "unsupported", "script.py is not a document"),
        (("photo.pdf", b"\x89PNG\r\n\x1a\n" + b"\0" * 32), "unsupported", "photo.pdf is not a PDF"),
    ],
)
def test_files_intake_would_refuse_are_refused(
    workspace: Workspace, source: tuple[str, bytes], kind: str, message: str
) -> None:
    with pytest.raises(DocumentError, match=message) as caught:
        preview_extraction(source, prompt="total", workspace=workspace)
    assert caught.value.kind == kind


def test_a_missing_path_is_an_intake_error(workspace: Workspace, tmp_path: Path) -> None:
    with pytest.raises(IntakeError, match="cannot read"):
        preview_extraction(tmp_path / "nope.pdf", prompt="total", workspace=workspace)


def test_options_are_checked_as_submit_checks_them(workspace: Workspace) -> None:
    with pytest.raises(UnknownExtractorError, match="unknown extractor 'nope'"):
        preview_extraction(INVOICE_PDF, prompt="total", extractor="nope", workspace=workspace)
    with pytest.raises(SchemaError, match="over the limit of 4000"):
        preview_extraction(INVOICE_PDF, prompt="total, " * 700, workspace=workspace)
    with pytest.raises(SchemaError, match="takes no schema"):
        preview_extraction(
            INVOICE_PDF,
            strategy="auto",
            schema={"fields": [{"name": "total"}]},
            workspace=workspace,
        )


def test_a_schema_instead_of_a_prompt(workspace: Workspace) -> None:
    schema = {"fields": [{"name": "amount_due", "label": "total", "type": "money"}]}

    preview = preview_extraction(INVOICE_PDF, schema=schema, workspace=workspace)

    assert preview.values == {"amount_due": {"amount": 1234.5, "currency": "USD"}}


def test_html_marks_the_evidence_and_escapes_the_document(workspace: Workspace) -> None:
    text = b"INVOICE <script>alert(1)</script>\nInvoice number: INV-77\nTotal: $12.00\n"

    preview = preview_extraction(
        ("tricky.txt", text), prompt="invoice number, total", workspace=workspace
    )
    page = preview._repr_html_()

    assert page is not None
    assert "<script>" not in page
    assert "&lt;script&gt;" in page
    assert "data-field='invoice_number'" in page
    assert ">INV-77</mark>" in page
    assert "not found" not in page
    assert repr(preview) == "Preview('tricky.txt': 2 of 2 fields found, 1 page)"


def test_the_preview_gives_what_the_worker_stores(tmp_path: Path) -> None:
    # Immediate mode: the worker's job runs during submit, in this process.
    workspace = open_workspace(home=str(tmp_path / "inline"), queue_url="memory://")
    try:
        prompt = "invoice number, date, total, line items"
        batch = submit([INVOICE_PDF], prompt=prompt, workspace=workspace)
        with workspace.db.read() as session:
            stored = session.scalars(
                select(ExtractedData).where(ExtractedData.batch_id == batch.id)
            ).one()
        preview = preview_extraction(INVOICE_PDF, prompt=prompt, workspace=workspace)
        assert preview.values == stored.data
        for field in preview.fields:
            evidence = field.evidence
            assert evidence is not None
            assert stored.evidence[field.name]["start"] == evidence.start
            assert stored.evidence[field.name]["end"] == evidence.end
    finally:
        workspace.close()


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="the tesseract program is missing")
def test_values_read_by_ocr_have_a_box_on_the_page(workspace: Workspace) -> None:
    font_file = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
    font = (
        ImageFont.truetype(str(font_file), 40)
        if font_file.exists()
        else ImageFont.load_default(size=40)
    )
    image = Image.new("RGB", (900, 240), "white")
    draw = ImageDraw.Draw(image)
    draw.text((40, 40), "Invoice Number: INV-0042", fill="black", font=font)
    draw.text((40, 120), "Total: 123.45 EUR", fill="black", font=font)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")

    preview = preview_extraction(
        ("scan.png", buffer.getvalue()), prompt="invoice number, total", workspace=workspace
    )

    evidence = preview.field("total").evidence
    assert evidence is not None and evidence.box is not None
    x0, y0, x1, y1 = evidence.box
    assert 40 <= x0 < x1 <= 900 and 100 < y0 < y1 < 240  # the second line, from y=120
    assert "box (" in (preview._repr_html_() or "")
