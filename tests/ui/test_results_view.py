"""The results grid: its rows, query, marks and edits, on real batches processed by a real
worker (the browser's part is tests/browser/test_review.py)."""

from __future__ import annotations

import pytest

from batchnb.queue.worker import Worker
from batchnb.services.batches import Batch
from batchnb.services.review import list_corrections, review_status
from batchnb.services.submit import submit
from batchnb.services.workspace import Workspace
from batchnb.ui import DocumentView, ResultsView
from batchnb.ui.results_table import grid_columns
from tests.conftest import SAMPLES

PROMPT = "invoice number, date, total, vendor, line items (description, quantity, amount)"
PDF = "bluefin-office-supplies-invoice.pdf"
TEXT = "maplewood-print-invoice.txt"
MARKDOWN = "copperleaf-web-invoice.md"
CORRUPT = ("broken.pdf", b"%PDF-1.7\n1 0 obj << /Type /Catalog >> garbage without xref")


@pytest.fixture
def batch(workspace: Workspace, worker: Worker) -> Batch:
    found = submit(
        [SAMPLES / PDF, SAMPLES / TEXT, SAMPLES / MARKDOWN, CORRUPT],
        PROMPT,
        rules=[{"required": ["vendor"]}],
        workspace=workspace,
    )
    found.wait(timeout=60)
    return found


def _row(view: ResultsView, file_name: str) -> dict:
    return next(row for row in view.grid.rows if row["cells"]["file_name"] == file_name)


def test_the_grid_shows_one_page_of_rows_with_their_marks(
    workspace: Workspace, batch: Batch
) -> None:
    view = ResultsView(batch)
    grid = view.grid
    assert (grid.count, grid.total, len(grid.rows)) == (4, 4, 4)
    assert grid.title == f"Batch {batch.id} · results"
    assert grid.summary == "reviewed 0 of 3"
    assert grid.has_arrays and not grid.loading
    keys = [column["key"] for column in grid.columns]
    assert keys[:4] == ["document_id", "file_name", "status", "error"]
    assert "batch_id" not in keys and "corrected" not in keys
    pdf = _row(view, PDF)
    assert pdf["cells"]["total"] == "1,234.50" and pdf["cells"]["total_currency"] == "USD"
    assert pdf["cells"]["line_items"] == "4 items"
    assert pdf["cells"]["date"] == "2024-03-15"
    # The offline extractor is unsure of the vendor: marked, with the confidence on hover.
    assert "low" in pdf["classes"]["vendor"]
    assert pdf["titles"]["vendor"].startswith("low confidence: ")
    failed = _row(view, "broken.pdf")
    assert failed["status"] == "failed" and "not a readable PDF" in failed["error"]
    flagged = _row(view, MARKDOWN)
    assert flagged["flags"] and "vendor" in flagged["flags"][0]
    assert "flagged" in flagged["classes"]["vendor"]


def test_search_filter_sort_and_pages(workspace: Workspace, batch: Batch) -> None:
    view = ResultsView(batch, page_size=2)
    grid = view.grid
    assert (grid.total, len(grid.rows)) == (4, 2)
    grid.page = 1
    assert len(grid.rows) == 2
    grid.search = "maplewood"  # a new query starts at the first page
    assert grid.page == 0 and grid.total == 1
    assert grid.rows[0]["cells"]["file_name"] == TEXT
    grid.search = "TXT-0042"  # values are searched too, case-blind
    assert [row["cells"]["file_name"] for row in grid.rows] == [TEXT]
    grid.search = ""
    grid.filter = "failed"
    assert [row["cells"]["file_name"] for row in grid.rows] == ["broken.pdf"]
    grid.filter = "flagged"
    assert [row["cells"]["file_name"] for row in grid.rows] == [MARKDOWN]
    grid.filter = "low"
    assert grid.total >= 1
    grid.filter = "all"
    grid.page_size = 10
    grid.sort, grid.descending = "total", True
    totals = [row["cells"]["total"] for row in grid.rows]
    assert totals[0] == "1,980.00" and totals[-1] == ""  # missing values last
    grid.descending = False
    assert grid.rows[0]["cells"]["total"] == "845.00"


def test_a_cell_is_corrected_in_place_and_refusals_show_there(
    workspace: Workspace, batch: Batch
) -> None:
    view = ResultsView(batch)
    key = _row(view, PDF)["key"]
    assert view.correct(key, "total", "plenty") is None
    assert "is not a money" in view.grid.edit_errors[f"{key}:total"]
    assert list_corrections(batch_id=batch.id, workspace=workspace) == []

    correction = view.correct(key, "total", "1300")
    assert correction is not None and correction.field == "total"
    assert correction.new_value == {"amount": 1300.0, "currency": "USD"}
    assert f"{key}:total" not in view.grid.edit_errors
    row = _row(view, PDF)
    assert row["cells"]["total"] == "1,300.00"
    assert "corrected" in row["classes"]["total"]
    assert row["titles"]["total"] == "corrected; extracted: 1,234.50 USD"
    assert view.grid.summary == "reviewed 0 of 3 · 1 document corrected"
    # The currency column corrects the money value's currency.
    view.correct(key, "total_currency", "EUR")
    assert batch.results().set_index("file_name").loc[PDF, "total_currency"] == "EUR"
    # A failed document has nothing to correct: the service says so.
    failed = _row(view, "broken.pdf")["key"]
    assert view.correct(failed, "total", "1") is None
    assert "failed" in view.grid.edit_errors[f"{failed}:total"]


def test_multi_row_mode_corrects_one_item(workspace: Workspace, batch: Batch) -> None:
    view = ResultsView(batch)
    view.grid.mode = "multi-row"
    keys = [column["key"] for column in view.grid.columns]
    assert "line_items.amount" in keys and "line_items" not in keys
    items = [row for row in view.grid.rows if row["cells"]["file_name"] == PDF]
    assert [row["item"] for row in items] == [0, 1, 2, 3]
    assert items[2]["cells"]["line_items.description"] == "Ergonomic desk chair"
    view.correct(items[2]["key"], "line_items.amount", "400")
    assert list_corrections(batch_id=batch.id, workspace=workspace)[0].field == (
        "line_items.2.amount"
    )
    row = next(r for r in view.grid.rows if r["key"] == items[2]["key"])
    assert row["cells"]["line_items.amount"] == "400.00"
    assert "corrected" in row["classes"]["line_items.amount"]
    assert "corrected" not in items[1]["classes"].get("line_items.amount", "")


def test_review_marks_and_the_document_view(workspace: Workspace, batch: Batch) -> None:
    view = ResultsView(batch)
    document_id = _row(view, PDF)["document_id"]
    assert view.set_reviewed(document_id)
    assert _row(view, PDF)["reviewed"]
    assert view.grid.summary.startswith("reviewed 1 of 3")
    assert review_status(batch.id, workspace=workspace).reviewed == 1
    view.grid.filter = "unreviewed"
    assert PDF not in [row["cells"]["file_name"] for row in view.grid.rows]
    view.grid.filter = "all"

    key = _row(view, PDF)["key"]
    view._handle_message(None, {"type": "open", "key": key}, [])
    opened = view.document_view
    assert isinstance(opened, DocumentView) and opened.document_id == document_id
    assert view.detail.children == (opened,)
    assert view.grid.selected == document_id
    # A correction made in the document view shows in the grid.
    opened.correct("invoice_number", "BOS-1")
    assert _row(view, PDF)["cells"]["invoice_number"] == "BOS-1"


def test_another_user_sees_the_refusal_and_nothing_changes(
    workspace: Workspace, batch: Batch
) -> None:
    view = ResultsView(batch, workspace=workspace, actor="admin-less")
    assert view.grid.rows == [] and "may not" in view.grid.message
    owner = ResultsView(batch)
    key = _row(owner, PDF)["key"]
    owner.actor = "mallory"
    assert owner.correct(key, "total", "1") is None
    assert "may not" in owner.grid.edit_errors[f"{key}:total"]
    assert not owner.set_reviewed(_row(owner, PDF)["document_id"])
    assert "may not" in owner.grid.message
    assert list_corrections(batch_id=batch.id, workspace=workspace) == []


def test_batch_review_returns_the_grid(workspace: Workspace, batch: Batch) -> None:
    view = batch.review()
    assert isinstance(view, ResultsView) and view.grid.count == 4
    assert repr(view).startswith(f"ResultsView(batch {batch.id}: 4 of 4 rows")


def test_columns_know_what_each_cell_corrects(workspace: Workspace, batch: Batch) -> None:
    columns = {c.key: c for c in grid_columns(batch.to_dataframe("multi-row"))}
    assert columns["total"].path(None) == "total" and columns["total"].money
    assert columns["total_currency"].path(None) == "total"
    assert columns["line_items.amount"].path(3) == "line_items.3.amount"
    assert columns["line_items.amount"].path(None) is None
    assert not columns["file_name"].editable
    assert "error" not in columns  # no document failed among these rows
