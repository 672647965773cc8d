"""The prompt editor: live schema, limits, per-document and auto strategies, submit and preview,
on a real workspace with the sample documents."""

from __future__ import annotations

import asyncio
import html
import json
import re
from pathlib import Path
from typing import Any

import pytest
import traitlets
from sqlalchemy import select

from batchnb import submit
from batchnb.db.models import Document, ExtractionBatch
from batchnb.errors import SchemaError
from batchnb.extract.schema import MAX_PROMPT_CHARS
from batchnb.extract.templates import builtin_templates
from batchnb.services.workspace import Workspace
from batchnb.ui import PromptEditor
from tests.conftest import SAMPLES

INVOICE_PDF = SAMPLES / "bluefin-office-supplies-invoice.pdf"
RECEIPT_PDF = SAMPLES / "harbor-lane-bakery-receipt.pdf"
TEXT_INVOICE = SAMPLES / "maplewood-print-invoice.txt"
FILES = [INVOICE_PDF, RECEIPT_PDF, TEXT_INVOICE]


@pytest.fixture
def editor(workspace: Workspace) -> PromptEditor:
    editor = PromptEditor(workspace=workspace)
    editor.set_files(FILES)
    return editor


def _shown(widget: Any) -> str:
    """A widget's HTML as the user reads it (entities decoded)."""
    return html.unescape(widget.value)


def _rows(widget: Any) -> dict[str, list[str]]:
    """The rows of a widget's HTML table by their first cell (the file name)."""
    rows = [
        re.findall(r"<td[^>]*>(.*?)</td>", row)
        for row in re.findall(r"<tr>(.*?)</tr>", _shown(widget))
    ]
    return {cells[0]: cells[1:] for cells in rows if cells}


def _strategy_of(workspace: Workspace, batch_id: int) -> str:
    with workspace.db.read() as session:
        return session.scalars(
            select(ExtractionBatch.strategy).where(ExtractionBatch.id == batch_id)
        ).one()


def test_the_schema_view_follows_the_prompt(editor: PromptEditor) -> None:
    editor.prompt = "invoice number, due date"
    view = editor.schema_view.value
    assert "2 fields" in view
    assert "invoice_number" in view and "due_date" in view and ">date<" in view

    editor.prompt = "invoice number, due date, line items"

    view = editor.schema_view.value
    assert "3 fields" in view
    assert "array of rows: description" in view and "unit_price" in view
    schema, problem = editor.current_schema()
    assert problem == "" and schema is not None
    assert schema.field("line_items").type == "array"
    assert editor.problems() == []


def test_the_counter_shows_the_limit_and_an_overlong_prompt_is_an_error(
    editor: PromptEditor,
) -> None:
    editor.prompt = "invoice number, total"
    assert f"21 / {MAX_PROMPT_CHARS:,} characters" in editor.counter.value
    assert editor.prompt_error.value == ""

    editor.prompt = "total, " * 600  # 4,200 characters

    assert "4,200 / 4,000 characters: 200 over the limit" in editor.counter.value
    assert "over the limit of 4000" in _shown(editor.prompt_error)
    assert editor.schema_view.value == ""  # no schema is shown for a prompt that makes none
    assert editor.problems() == [
        "the prompt is 4200 characters long, over the limit of 4000; list only the fields "
        "to extract, or pass a schema dict"
    ]
    with pytest.raises(SchemaError, match="over the limit"):
        editor.submit_options()


def test_an_invalid_prompt_is_shown_in_place(editor: PromptEditor) -> None:
    editor.prompt = "total, total"

    assert "names the field 'total' twice" in _shown(editor.prompt_error)
    assert editor.problems()


def test_editing_the_schema_as_json(editor: PromptEditor, workspace: Workspace) -> None:
    editor.prompt = "invoice number, total"

    editor.schema_toggle.value = True

    assert json.loads(editor.schema_box.value) == {
        "fields": [
            {"name": "invoice_number", "label": "invoice number", "type": "string"},
            {"name": "total", "label": "total", "type": "money"},
        ]
    }
    assert editor.schema_box.layout.display is None
    assert editor.prompt_box.layout.display == "none"

    editor.schema_box.value = '{"fields": [{"name": "amount_due", "type": "money"}'
    assert "not valid JSON" in _shown(editor.prompt_error)
    assert editor.problems()[0].startswith("the schema is not valid JSON")

    editor.schema_box.value = '{"fields": [{"name": "amount_due", "type": "money"}]}'
    assert "amount_due" in editor.schema_view.value and editor.prompt_error.value == ""
    options = editor.submit_options()
    assert options == {
        "strategy": "global",
        "schema": {"fields": [{"name": "amount_due", "label": "amount_due", "type": "money"}]},
    }
    batch = submit(FILES, workspace=workspace, **options)
    assert _strategy_of(workspace, batch.id) == "global"


def test_global_options_make_a_global_batch(editor: PromptEditor, workspace: Workspace) -> None:
    editor.prompt = "invoice number, date, total"

    options = editor.submit_options()

    assert options == {"strategy": "global", "prompt": "invoice number, date, total"}
    batch = submit(FILES, workspace=workspace, **options)
    assert _strategy_of(workspace, batch.id) == "global"


def test_per_document_names_the_files_left_without_a_prompt(
    editor: PromptEditor, workspace: Workspace
) -> None:
    editor.strategy = "per_document"
    assert editor.panels.selected_index == 1
    editor.per_document.boxes[INVOICE_PDF.name].value = "invoice number, total"

    assert editor.document_prompts == {INVOICE_PDF.name: "invoice number, total"}
    expected = (
        f"no prompt for {RECEIPT_PDF.name}, {TEXT_INVOICE.name}: give each its own prompt, "
        "or write a default prompt for the rest"
    )
    assert editor.problems() == [expected]
    assert RECEIPT_PDF.name in _shown(editor.per_document.error)
    assert INVOICE_PDF.name not in _shown(editor.per_document.error)

    editor.per_document.default_box.value = "total"

    assert editor.problems() == []
    assert editor.per_document.error.value == ""
    options = editor.submit_options()
    assert options == {
        "strategy": "per_document",
        "document_prompts": {INVOICE_PDF.name: "invoice number, total"},
        "prompt": "total",
    }
    batch = submit(FILES, workspace=workspace, **options)
    assert _strategy_of(workspace, batch.id) == "per_document"
    with workspace.db.read() as session:
        prompts = dict(session.execute(select(Document.file_name, Document.prompt)).all())
    assert prompts[INVOICE_PDF.name] == "invoice number, total"
    assert prompts[RECEIPT_PDF.name] is None


def test_a_files_whole_name_shows_on_hover_beside_its_prompt(editor: PromptEditor) -> None:
    editor.strategy = "per_document"
    rows = editor.per_document.rows.children
    labels = {row.children[0].value: row.children[0].tooltip for row in rows}

    assert labels[INVOICE_PDF.name] == INVOICE_PDF.name  # cut to fit, whole on hover


def test_per_document_prompts_set_from_code_show_in_their_boxes(editor: PromptEditor) -> None:
    editor.document_prompts = {RECEIPT_PDF.name: "total", "not-a-file.pdf": "date"}

    assert editor.per_document.boxes[RECEIPT_PDF.name].value == "total"
    assert editor.own_prompts() == {RECEIPT_PDF.name: "total"}

    editor.set_files([RECEIPT_PDF])
    assert editor.document_prompts == {RECEIPT_PDF.name: "total"}


def test_auto_shows_the_templates_and_the_classifiers_choice(
    editor: PromptEditor, workspace: Workspace
) -> None:
    editor.strategy = "auto"

    assert editor.panels.selected_index == 2
    assert editor.templates == builtin_templates()
    assert set(editor.auto.boxes) == set(builtin_templates())
    assert editor.auto.boxes["receipt"].value == builtin_templates()["receipt"]
    assert "not classified yet" in editor.auto.classification.value

    found = editor.classify_files()

    assert found == {
        INVOICE_PDF.name: "invoice",
        RECEIPT_PDF.name: "receipt",
        TEXT_INVOICE.name: "invoice",
    }
    rows = _rows(editor.auto.classification)
    assert rows[RECEIPT_PDF.name][0] == "receipt"  # type, confidence, template
    assert rows[RECEIPT_PDF.name][2] == "receipt"
    assert rows[INVOICE_PDF.name][0] == "invoice"
    assert "not classified yet" not in _shown(editor.auto.classification)

    editor.auto.boxes["invoice"].value = "invoice number, invoice number"
    assert editor.problems() and "template 'invoice'" in editor.problems()[0]
    assert "template 'invoice'" in _shown(editor.auto.error)

    editor.auto.boxes["invoice"].value = "invoice number, due date"
    editor.auto.add_type("delivery_note")
    assert editor.problems() == [
        "template 'delivery_note' (overrides): the prompt is empty; list the fields to "
        "extract, e.g. 'invoice number, date, total'"
    ]
    editor.auto.boxes["delivery_note"].value = "delivery number, date"
    assert editor.problems() == []

    options = editor.submit_options()
    assert options["strategy"] == "auto"
    assert options["templates"]["invoice"] == "invoice number, due date"
    assert options["templates"]["delivery_note"] == "delivery number, date"
    batch = submit(FILES, workspace=workspace, **options)
    assert _strategy_of(workspace, batch.id) == "auto"


def test_the_preview_shows_values_with_marked_evidence(editor: PromptEditor) -> None:
    editor.prompt = "invoice number, total"
    editor.preview_file.value = INVOICE_PDF.name

    editor.preview_button.click()

    output = editor.preview_output.value
    assert ">BOS-2024-0117</mark>" in output
    assert "data-field='total'" in output
    assert editor.preview_error.value == ""
    assert editor.busy.value == ""
    assert not editor.preview_button.disabled
    assert editor.last_preview is not None
    assert editor.last_preview.values["invoice_number"] == "BOS-2024-0117"


def test_an_auto_preview_records_the_type(editor: PromptEditor) -> None:
    editor.strategy = "auto"

    preview = editor.run_preview(RECEIPT_PDF.name)

    assert preview is not None and preview.document_type == "receipt"
    assert editor.document_types == {RECEIPT_PDF.name: "receipt"}
    assert _rows(editor.auto.classification)[RECEIPT_PDF.name][0] == "receipt"


def test_preview_errors_are_messages_not_tracebacks(editor: PromptEditor, tmp_path: Path) -> None:
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >>\ngarbage")
    editor.set_files([broken])
    editor.prompt = "total"

    assert editor.run_preview() is None

    assert "broken.pdf: not a readable PDF" in _shown(editor.preview_error)
    assert "Traceback" not in _shown(editor.preview_error)
    assert editor.preview_output.value == ""

    editor.prompt = ""
    editor.preview_button.click()
    assert "the prompt is empty" in _shown(editor.preview_error)


def test_typing_in_a_kernel_updates_the_schema_once_it_pauses(workspace: Workspace) -> None:
    async def typing() -> tuple[str, str, str]:
        editor = PromptEditor(workspace=workspace)
        for end in range(1, len("invoice number") + 1):
            editor.prompt = "invoice number"[:end]
        counted, shown = editor.counter.value, editor.schema_view.value
        await asyncio.sleep(0.4)
        return counted, shown, editor.schema_view.value

    counted, before, after = asyncio.run(typing())

    assert "14 / 4,000" in counted  # the count follows every key at once
    assert "invoice_number" not in before
    assert "invoice_number" in after


def test_the_strategy_is_checked(editor: PromptEditor) -> None:
    with pytest.raises(traitlets.TraitError, match="unknown strategy 'everything'"):
        editor.strategy = "everything"
    editor.strategy_selector.value = "per_document"
    assert editor.strategy == "per_document"


def test_browser_tests_find_every_part_by_its_class(editor: PromptEditor) -> None:
    editor.strategy = "auto"
    hooks = {
        "batchnb-prompt-editor": editor,
        "batchnb-strategy": editor.strategy_selector,
        "batchnb-prompt-box": editor.prompt_box,
        "batchnb-prompt-counter": editor.counter,
        "batchnb-schema-view": editor.schema_view,
        "batchnb-schema-toggle": editor.schema_toggle,
        "batchnb-schema-box": editor.schema_box,
        "batchnb-prompt-error": editor.prompt_error,
        "batchnb-default-prompt": editor.per_document.default_box,
        "batchnb-file-prompt": editor.per_document.boxes[INVOICE_PDF.name],
        "batchnb-file-prompt-1": editor.per_document.boxes[RECEIPT_PDF.name],
        "batchnb-document-error": editor.per_document.error,
        "batchnb-template-box": editor.auto.boxes["invoice"],
        "batchnb-template-error": editor.auto.error,
        "batchnb-classify-button": editor.auto.classify_button,
        "batchnb-classification": editor.auto.classification,
        "batchnb-preview-file": editor.preview_file,
        "batchnb-preview-button": editor.preview_button,
        "batchnb-preview-output": editor.preview_output,
        "batchnb-preview-error": editor.preview_error,
        "batchnb-busy": editor.busy,
    }
    for name, widget in hooks.items():
        assert name in widget._dom_classes, name
    for error in (editor.prompt_error, editor.per_document.error, editor.preview_error):
        assert "batchnb-error" in error._dom_classes


def test_in_a_kernel_the_preview_runs_off_the_event_loop(editor: PromptEditor) -> None:
    editor.prompt = "invoice number, total"
    editor.preview_file.value = TEXT_INVOICE.name

    async def press() -> tuple[str, bool, str]:
        editor.preview_button.click()
        busy, disabled = _shown(editor.busy), editor.preview_button.disabled
        for _ in range(200):  # until the output shows, at most 10 s
            if editor.preview_output.value:
                break
            await asyncio.sleep(0.05)
        return busy, disabled, editor.preview_output.value

    busy, disabled_while_busy, output = asyncio.run(press())

    assert f"extracting {TEXT_INVOICE.name}" in busy
    assert disabled_while_busy
    assert ">TXT-0042</mark>" in output
    assert editor.busy.value == "" and not editor.preview_button.disabled


def test_in_a_kernel_classifying_runs_off_the_event_loop(
    editor: PromptEditor, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4\ngarbage")
    editor.set_files([*FILES, broken])
    editor.strategy = "auto"

    async def press() -> tuple[str, bool]:
        editor.auto.classify_button.click()
        shown, disabled = _shown(editor.auto.classification), editor.auto.classify_button.disabled
        for _ in range(200):  # until every file shows its type, at most 10 s
            if len(editor.document_types) == len(FILES):
                break
            await asyncio.sleep(0.05)
        return shown, disabled

    busy, disabled_while_busy = asyncio.run(press())

    assert "classifying 4 files" in busy and disabled_while_busy
    assert editor.document_types[RECEIPT_PDF.name] == "receipt"
    table = _shown(editor.auto.classification)
    assert "broken.pdf: not a readable PDF" in table  # the one that failed, by name
    assert _rows(editor.auto.classification)["broken.pdf"][0] == "not classified yet"
    assert not editor.auto.classify_button.disabled
