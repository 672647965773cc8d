"""Reviewing a batch in a real browser, in Voila and JupyterLab: ``batch.review()``.

A batch (two invoices, a text invoice and a broken PDF) is processed by a real worker in the
session's workspace; the page shows its results grid. The grid is filtered, searched and
sorted; a row opens its document view, where clicking a field turns to its evidence (a box on
the PDF page, the span marked in the page text) and flashes it. A value is corrected in the
grid (a bad value first: the service's message shows in the cell) and another in the
document view, the document is marked reviewed, and an export made in the test process
carries the corrected values.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from batchnb.services.exports import export
from batchnb.services.submit import submit
from batchnb.services.workers import start_worker
from batchnb.services.workspace import open_workspace
from tests.browser.pages import open_app

pytest.importorskip("playwright.sync_api", reason="playwright is missing (make setup installs it)")

from playwright.sync_api import Locator, Page, expect

Screenshot = Callable[..., Path]
SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "documents"
PDF = "bluefin-office-supplies-invoice.pdf"
TEXT = "maplewood-print-invoice.txt"
PROMPT = "invoice number, date, total"


def _seed(home: Path) -> int:
    """A finished batch in the workspace the pages' kernels use, processed by a real worker
    running in this process; returns its id."""
    workspace = open_workspace(home=str(home))
    try:
        sources = [
            SAMPLES / PDF,
            SAMPLES / TEXT,
            SAMPLES / "ridgeback-bicycle-invoice.html",
            ("broken.pdf", b"%PDF-1.7\n1 0 obj << /Type /Catalog >> garbage without xref"),
        ]
        batch = submit(sources, PROMPT, name="to review", workspace=workspace)
        worker = start_worker(workspace, threads=2)
        try:
            progress = batch.wait(timeout=120)
        finally:
            worker.stop()
        assert (progress.completed, progress.failed) == (3, 1)
        return batch.id
    finally:
        workspace.close()


def _row(grid: Locator, file_name: str) -> Locator:
    return grid.locator("[data-testid=result-row]", has_text=file_name)


def _filter_search_sort(grid: Locator, screenshot: Screenshot) -> None:
    rows = grid.locator("[data-testid=result-row]")
    grid.locator("select.brg-filter").select_option("failed")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("broken.pdf")
    expect(rows.first.locator("[data-column=error]")).to_contain_text("not a readable PDF")
    screenshot("failed-filter", show=grid)
    grid.locator("select.brg-filter").select_option("all")
    expect(rows).to_have_count(4)

    grid.locator("input.brg-search").fill("maplewood")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(TEXT)
    grid.locator("input.brg-search").fill("")
    expect(rows).to_have_count(4)

    header = grid.locator("th[data-column=file_name]")
    header.click()
    expect(header).to_contain_text("▲")
    expect(rows.first).to_contain_text(PDF)  # bluefin < broken < maplewood < ridgeback
    header.click()
    expect(header).to_contain_text("▼")
    expect(rows.first).to_contain_text("ridgeback")
    screenshot("sorted", show=grid)


def _correct_in_grid(grid: Locator, screenshot: Screenshot) -> None:
    total = _row(grid, PDF).locator("td[data-column=total]")
    total.dblclick()
    box = total.locator("input.brg-input")
    expect(box).to_have_value("1234.50")
    box.fill("a lot")
    box.press("Enter")
    expect(total.locator("[data-testid=edit-error]")).to_contain_text("is not a money")
    expect(total).to_contain_text("1,234.50")  # nothing changed
    screenshot("refused-edit", show=grid)
    total.dblclick()
    total.locator("input.brg-input").fill("1300")
    total.locator("input.brg-input").press("Enter")
    expect(total).to_contain_text("1,300.00")
    expect(total).to_have_class(re.compile(r"\bbrg-corrected\b"))
    expect(total).to_have_attribute("title", re.compile(r"extracted: 1,234\.50 USD"))
    expect(total.locator("[data-testid=edit-error]")).to_have_count(0)
    expect(grid.locator("[data-testid=review-summary]")).to_contain_text("1 document corrected")
    screenshot("corrected-in-grid", show=grid)


def _document_view(page: Page, grid: Locator, screenshot: Screenshot, docs: bool) -> Locator:
    _row(grid, PDF).locator("td[data-column=file_name]").click()
    view = page.locator(".batchnb-document-view").last
    expect(view.locator(".bdv-title")).to_have_text(PDF, timeout=30_000)
    expect(view.locator("[data-testid=page-image]")).to_be_visible(timeout=30_000)
    expect(view.locator("[data-testid=page-number]")).to_have_text("Page 1 of 1")
    # The corrected total shows as corrected here too.
    total = view.locator("[data-testid=document-field][data-field=total]")
    expect(total).to_contain_text("1,300.00 USD")
    expect(total.locator(".bdv-corrected-chip")).to_be_visible()

    field = view.locator("[data-testid=document-field][data-field=invoice_number]")
    field.locator(".bdv-label").click()
    box = view.locator(".bdv-box[data-field=invoice_number]")
    expect(box).to_be_visible()
    expect(box).to_have_class(re.compile(r"\bbdv-focused\b"))  # outlined (and flashed)
    expect(field).to_have_class(re.compile(r"\bbdv-active\b"))
    mark = view.locator("mark[data-field=invoice_number]")
    expect(mark).to_have_text("BOS-2024-0117")
    shown = "review-document-view.png" if docs else None
    screenshot("evidence-box", show=view, docs_image=shown)
    view.locator("details.bdv-text-details summary").click()
    expect(mark).to_be_visible()
    screenshot("evidence-text", show=mark)
    return view


def _correct_in_document(view: Locator, grid: Locator, screenshot: Screenshot) -> None:
    field = view.locator("[data-testid=document-field][data-field=invoice_number]")
    field.hover()
    field.locator("button.bdv-edit").click()
    box = field.locator("input.bdv-input")
    expect(box).to_have_value("BOS-2024-0117")
    box.fill("BOS-2024-0117-A")
    box.press("Enter")
    expect(field.locator(".bdv-value")).to_have_text("BOS-2024-0117-A")
    expect(field.locator(".bdv-corrected-chip")).to_be_visible()
    # The grid follows.
    cell = _row(grid, PDF).locator("td[data-column=invoice_number]")
    expect(cell).to_contain_text("BOS-2024-0117-A")
    view.locator("button.bdv-review-button").click()
    expect(view.locator("[data-testid=reviewed-mark]")).to_be_visible()
    expect(grid.locator("[data-testid=review-summary]")).to_contain_text("reviewed 1 of 3")
    expect(_row(grid, PDF).locator("button.brg-review")).to_contain_text("Reviewed")
    screenshot("corrected-and-reviewed", show=view)


def _text_evidence(page: Page, grid: Locator, screenshot: Screenshot) -> None:
    _row(grid, TEXT).locator("td[data-column=file_name]").click()
    view = page.locator(".batchnb-document-view").last
    expect(view.locator(".bdv-title")).to_have_text(TEXT, timeout=30_000)
    expect(view.locator("[data-testid=page-image]")).to_have_count(0)  # text: no image
    view.locator("[data-testid=document-field][data-field=total] .bdv-label").click()
    mark = view.locator("mark[data-field=total]")
    expect(mark).to_be_visible()
    expect(mark).to_have_class(re.compile(r"\bbdv-focused\b"))
    screenshot("text-evidence", show=view)


@pytest.mark.parametrize("frontend", ["voila", "lab"])
def test_review_and_correct(
    frontend: str,
    page: Page,
    screenshot: Screenshot,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    server = request.getfixturevalue(f"{frontend}_server")
    home: Path = request.getfixturevalue(f"{frontend}_home")
    batch_id = _seed(home)
    open_app(page, server, "review.ipynb")
    grid = page.locator(".batchnb-results-grid").last
    expect(grid.locator(".brg-title")).to_have_text(f"Batch {batch_id} · results", timeout=60_000)
    expect(grid.locator("[data-testid=result-row]")).to_have_count(4, timeout=30_000)
    screenshot("grid", show=grid)

    _filter_search_sort(grid, screenshot)
    _correct_in_grid(grid, screenshot)
    view = _document_view(page, grid, screenshot, docs=frontend == "voila")
    _correct_in_document(view, grid, screenshot)
    _text_evidence(page, grid, screenshot)

    # An export made elsewhere (here: the test process) carries the corrections.
    workspace = open_workspace(home=str(home))
    try:
        target = tmp_path / "reviewed.csv"
        export(batch_id, "csv", path=target, background=False, workspace=workspace).wait(60)
        with target.open(newline="") as opened:
            rows = {row["file_name"]: row for row in csv.DictReader(opened)}
    finally:
        workspace.close()
    assert rows[PDF]["invoice_number"] == "BOS-2024-0117-A"
    assert float(rows[PDF]["total"]) == pytest.approx(1300.0)
    assert rows[TEXT]["invoice_number"] == "TXT-0042"
