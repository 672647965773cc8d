"""``BatchManager`` in a real browser, in Voila and JupyterLab.

Batches are seeded in the session's workspace (``voila_home``/``lab_home``) before the page
opens, each test's under a name token of its own so that other tests' batches never count.
The user filters, searches and sorts; selects two batches, exports them and downloads the file
(read back here); cancels a waiting batch; retries a failed document and sees it complete with
a real ``batchnb worker``; and, as another user, tries to delete a batch and is refused while
nothing changes in the database.
"""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import batchnb
from batchnb.services.workspace import Workspace
from tests.browser.pages import (
    open_app,
)
from tests.browser.servers import JupyterServer, Process

pytest.importorskip("playwright.sync_api", reason="playwright is missing (make setup installs it)")

from playwright.sync_api import Locator, Page, expect

Screenshot = Callable[..., Path]
SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "documents"
TEXT = SAMPLES / "maplewood-print-invoice.txt"
HTML = SAMPLES / "ridgeback-bicycle-invoice.html"
MARKDOWN = SAMPLES / "copperleaf-web-invoice.md"
PROMPT = "invoice number, date, total"
SETUP = "batch_manager.json"
FINISH_TIMEOUT = 120_000
ROW = "[data-testid=batch-row]"


# -- seeding -------------------------------------------------------------------------------


@pytest.fixture
def frontend_home(request: pytest.FixtureRequest) -> Iterator[tuple[JupyterServer, Workspace]]:
    """The test's server and a workspace on the same ``BATCHNB_HOME`` as its kernels."""
    frontend = request.node.callspec.params["frontend"]
    server: JupyterServer = request.getfixturevalue(f"{frontend}_server")
    home: Path = request.getfixturevalue(f"{frontend}_home")
    workspace = batchnb.open_workspace(home=str(home))
    yield server, workspace
    workspace.close()


@pytest.fixture
def setup_file(notebook_root: Path) -> Iterator[Path]:
    """``batch_manager.json`` beside the notebook (user and selection); removed afterwards."""
    path = notebook_root / SETUP
    yield path
    path.unlink(missing_ok=True)


def finished_batch(workspace: Workspace, name: str, files: list[Path]) -> batchnb.Batch:
    """A batch extracted by a worker in this process (offline extractor), waited for."""
    batch = batchnb.submit(files, PROMPT, name=name, workspace=workspace)
    worker = batchnb.start_worker(workspace, threads=1)
    try:
        batch.wait(timeout=60, progress=False)
    finally:
        worker.stop()
    return batch


def failed_batch(workspace: Workspace, name: str, files: list[Path]) -> batchnb.Batch:
    """A batch whose documents failed for real, with a reason a retry can cure.

    It is submitted with the ``openai`` extractor by a notebook configured for a local
    OpenAI-compatible server (``BATCHNB_OPENAI_BASE_URL``), and extracted by a worker started
    without that setting: building the extractor fails there ("set BATCHNB_OPENAI_API_KEY or
    BATCHNB_OPENAI_BASE_URL ..."), a configuration error that fails each document at once.
    Retrying with the built-in ``offline`` extractor, which needs no server, then succeeds.
    """
    home = str(workspace.settings.home)
    submitter = batchnb.open_workspace(home=home, openai_base_url="http://127.0.0.1:9/v1")
    try:
        batch = batchnb.submit(files, PROMPT, name=name, extractor="openai", workspace=submitter)
    finally:
        submitter.close()
    batch = batchnb.get_batch(batch.id, workspace=workspace)
    worker = batchnb.start_worker(workspace, threads=1)
    try:
        progress = batch.wait(timeout=60, progress=False)
    finally:
        worker.stop()
    assert progress.failed == len(files)
    return batch


# -- steps ---------------------------------------------------------------------------------


def open_manager(page: Page, server: JupyterServer) -> Locator:
    """Open the manager notebook as a Voila app, or in JupyterLab with every cell run."""
    open_app(page, server, "batch_manager.ipynb")
    manager = page.get_by_test_id("batch-manager").last
    expect(manager.get_by_test_id("page-info")).to_contain_text("Page 1", timeout=60_000)
    return manager


def search(manager: Locator, token: str, rows: int) -> None:
    box = manager.get_by_test_id("search")
    box.fill(token)
    box.press("Enter")
    expect(manager.locator(ROW)).to_have_count(rows)


def row(manager: Locator, name: str) -> Locator:
    name_cell = manager.page.locator("td[data-column=name]", has_text=name)
    return manager.locator(ROW).filter(has=name_cell)


def names(manager: Locator) -> list[str]:
    return manager.locator(f"{ROW} td[data-column=name]").all_text_contents()


# -- tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize("frontend", ["voila", "lab"])
def test_filter_search_sort_then_export_two_and_download(
    frontend: str,
    frontend_home: tuple[JupyterServer, Workspace],
    page: Page,
    screenshot: Screenshot,
    artifacts: Path,
) -> None:
    server, workspace = frontend_home
    token = f"bm{uuid.uuid4().hex[:6]}"
    north = finished_batch(workspace, f"{token} north", [TEXT, HTML])
    south = finished_batch(workspace, f"{token} south", [MARKDOWN])
    failed_batch(workspace, f"{token} west", [TEXT])

    manager = open_manager(page, server)
    search(manager, token, 3)
    screenshot("searched", show=manager)

    # Filters: failures, then status; the server pages and counts what matches. The time from
    # the change to the table showing its result is measured in the page (kernel round trip,
    # query and drawing) and written to the artifacts.
    started = page.evaluate("performance.now()")
    manager.get_by_test_id("filter-failures").select_option("yes")
    expect(manager.locator(ROW)).to_have_count(1)
    elapsed = page.evaluate("performance.now()") - started
    (artifacts / "filter-timing.txt").write_text(
        f"filter change to table updated, seen by Playwright: {elapsed:.0f} ms\n"
    )
    assert elapsed < 5_000
    expect(manager.locator(ROW)).to_contain_text(f"{token} west")
    expect(manager.locator(f"{ROW} [data-testid=status-badge]")).to_have_text("failed")
    screenshot("with-failures", show=manager)
    manager.get_by_test_id("filter-failures").select_option("")
    manager.get_by_test_id("filter-status").select_option("completed")
    expect(manager.locator(ROW)).to_have_count(2)
    expect(manager.get_by_test_id("page-info")).to_contain_text("2 batches")
    manager.get_by_test_id("filter-status").select_option("")
    expect(manager.locator(ROW)).to_have_count(3)

    # A date range: nothing was created from tomorrow on; today's range holds all three.
    today = datetime.now(UTC).date()  # the filter takes whole days in UTC
    manager.get_by_test_id("filter-from").fill((today + timedelta(days=1)).isoformat())
    expect(manager.get_by_test_id("empty")).to_be_visible()
    manager.get_by_test_id("filter-from").fill(today.isoformat())
    manager.get_by_test_id("filter-to").fill(today.isoformat())
    expect(manager.locator(ROW)).to_have_count(3)

    # Sort on the name column: ascending, then descending.
    manager.get_by_test_id("sort-name").click()
    expect(manager.locator(f"{ROW} td[data-column=name]").first).to_have_text(f"{token} north")
    manager.get_by_test_id("sort-name").click()
    expect(manager.locator(f"{ROW} td[data-column=name]").first).to_have_text(f"{token} west")
    assert names(manager) == [f"{token} west", f"{token} south", f"{token} north"]
    screenshot("sorted", show=manager)

    # Select two batches, export them as CSV, download the file and read it back.
    row(manager, f"{token} north").get_by_test_id("select-row").check()
    row(manager, f"{token} south").get_by_test_id("select-row").check()
    expect(manager.get_by_test_id("selected-count")).to_have_text("2 selected")
    manager.get_by_test_id("ops-export").click()
    dialog = manager.get_by_test_id("dialog")
    expect(dialog.get_by_test_id("dialog-text")).to_contain_text("Export 3 documents")
    dialog.get_by_test_id("dialog-format").select_option("csv")
    screenshot("export-dialog", show=dialog)
    dialog.get_by_test_id("dialog-confirm").click()
    download_button = dialog.get_by_test_id("dialog-download")
    expect(download_button).to_be_visible(timeout=60_000)
    expect(dialog.get_by_test_id("export-progress")).to_have_attribute("value", "3")
    # The docs show the Voila app's shots (make docs-images writes them to docs/images/).
    docs = frontend == "voila"
    screenshot("export-ready", show=dialog, docs_image="batch-manager-export.png" if docs else None)
    with page.expect_download() as info:
        download_button.click()
    download = info.value
    assert download.suggested_filename.endswith(".csv")
    content = Path(download.path()).read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(content)))
    assert sorted(r["file_name"] for r in rows) == sorted([TEXT.name, HTML.name, MARKDOWN.name])
    assert {int(r["batch_id"]) for r in rows} == {north.id, south.id}
    assert any(r["invoice_number"] for r in rows)
    dialog.get_by_test_id("dialog-close").click()
    expect(dialog).to_have_count(0)

    # Open one batch: its progress and its results view show under the table.
    row(manager, f"{token} north").get_by_test_id("row-open").click()
    detail = page.locator(".batchnb-manager-detail").last
    expect(detail.locator(".batchnb-progress-title")).to_contain_text(f"Batch {north.id}")
    expect(detail.locator(".batchnb-results-view")).to_be_visible()
    screenshot("opened", show=detail, docs_image="batch-manager.png" if docs else None)


@pytest.mark.parametrize("frontend", ["voila", "lab"])
def test_cancel_a_waiting_batch_and_retry_a_failed_one(
    frontend: str,
    frontend_home: tuple[JupyterServer, Workspace],
    page: Page,
    screenshot: Screenshot,
    start_worker: Callable[[Path], Process],
) -> None:
    """No worker runs at first: the waiting batch stays queued (marking it completed by hand is
    refused for that reason) until it is cancelled. The
    failed batch (see :func:`failed_batch`) is retried with the offline extractor after the
    confirmation dialog, and a real ``batchnb worker`` completes it while the page watches."""
    server, workspace = frontend_home
    token = f"bm{uuid.uuid4().hex[:6]}"
    failed = failed_batch(workspace, f"{token} failed", [TEXT, HTML])
    # Submitted after the seeding worker stopped: it waits.
    waiting = batchnb.submit([TEXT, MARKDOWN], PROMPT, name=f"{token} waiting", workspace=workspace)

    manager = open_manager(page, server)
    search(manager, token, 2)
    expect(manager.get_by_test_id("live")).to_contain_text("live")

    # Marking the waiting batch completed by hand is refused (its documents still wait): the
    # dialog gives the service's reason and the batch stays as it was.
    row(manager, "waiting").get_by_test_id("select-row").check()
    manager.get_by_test_id("ops-status").select_option("completed")
    manager.get_by_test_id("ops-set-status").click()
    dialog = manager.get_by_test_id("dialog")
    expect(dialog.get_by_test_id("dialog-text")).to_contain_text("Mark 1 batch completed by hand")
    dialog.get_by_test_id("dialog-confirm").click()
    expect(dialog.get_by_test_id("dialog-error")).to_contain_text(
        "cannot mark batches completed while documents are pending or processing"
    )
    screenshot("set-status-refused", show=dialog)
    dialog.get_by_test_id("dialog-close").click()
    expect(row(manager, "waiting")).to_have_attribute("data-status", "pending")
    assert waiting.status == "pending"
    manager.get_by_test_id("ops-clear").click()

    # Cancel the waiting batch.
    row(manager, "waiting").get_by_test_id("row-cancel").click()
    expect(dialog.get_by_test_id("dialog-text")).to_contain_text(
        "Cancel 1 batch: 2 documents waiting or running will not be extracted"
    )
    screenshot("cancel-dialog", show=dialog)
    dialog.get_by_test_id("dialog-confirm").click()
    expect(dialog.get_by_test_id("dialog-result")).to_contain_text("Cancelled 1 batch")
    dialog.get_by_test_id("dialog-close").click()
    expect(row(manager, "waiting")).to_have_attribute("data-status", "cancelled")
    assert waiting.status == "cancelled"
    screenshot("cancelled", show=manager)

    # Retry the failed batch's documents with the offline extractor.
    row(manager, "failed").get_by_test_id("row-retry").click()
    expect(dialog.get_by_test_id("dialog-text")).to_contain_text(
        "Retry 2 failed documents of 1 batch"
    )
    dialog.get_by_test_id("dialog-extractor").select_option("offline")
    screenshot("retry-dialog", show=dialog)
    dialog.get_by_test_id("dialog-confirm").click()
    expect(dialog.get_by_test_id("dialog-result")).to_contain_text(
        "Queued 2 failed documents again with the offline extractor"
    )
    dialog.get_by_test_id("dialog-close").click()
    expect(row(manager, "failed")).to_have_attribute("data-status", "pending")
    start_worker(workspace.settings.home)
    # The page follows the running batch by itself until it is done.
    expect(row(manager, "failed")).to_have_attribute(
        "data-status", "completed", timeout=FINISH_TIMEOUT
    )
    expect(row(manager, "failed").get_by_test_id("progress-text")).to_have_text("2/2")
    expect(manager.get_by_test_id("live")).to_have_text("", timeout=10_000)
    screenshot("retried-and-completed", show=manager)
    assert failed.progress(cached=False).completed == 2


@pytest.mark.parametrize("frontend", ["voila", "lab"])
def test_another_user_is_refused_and_nothing_changes(
    frontend: str,
    frontend_home: tuple[JupyterServer, Workspace],
    setup_file: Path,
    page: Page,
    screenshot: Screenshot,
) -> None:
    """The kernel acts as ``mallory`` (``BATCHNB_USER`` set before the workspace opens) with a
    colleague's batch selected by id; deleting it is refused with the service's reason, and
    the batch, its documents and its files are all still there."""
    server, workspace = frontend_home
    token = f"bm{uuid.uuid4().hex[:6]}"
    batch = finished_batch(workspace, f"{token} colleague", [TEXT, HTML])
    owner = batch.info().owner
    assert owner != "mallory"
    keys = list(batch.results()["document_id"])
    setup_file.write_text(json.dumps({"user": "mallory", "selected": [batch.id]}))

    manager = open_manager(page, server)
    # mallory lists only her own batches (none), yet holds the colleague's id selected.
    expect(manager.get_by_test_id("empty")).to_be_visible()
    expect(manager.get_by_test_id("selected-count")).to_have_text("1 selected")
    manager.get_by_test_id("ops-delete").click()
    dialog = manager.get_by_test_id("dialog")
    expect(dialog.get_by_test_id("dialog-text")).to_contain_text(
        "Delete 1 batch: 2 documents and their files"
    )
    screenshot("delete-dialog", show=dialog)
    dialog.get_by_test_id("dialog-confirm").click()
    error = dialog.get_by_test_id("dialog-error")
    expect(error).to_contain_text(
        re.compile(rf"user 'mallory' may not delete batch {batch.id} \(owned by {owner}\)")
    )
    expect(manager.get_by_test_id("message")).to_contain_text("Nothing changed")
    screenshot("refused", show=dialog)

    # Nothing changed: the batch, its documents, their results and files are all there.
    again = batchnb.get_batch(batch.id, workspace=workspace)
    assert again.status == "completed"
    assert again.progress(cached=False).completed == 2
    assert list(again.results()["document_id"]) == keys
    audit = batchnb.list_audit_events(
        actor_filter="mallory",
        action="delete",
        target_id=batch.id,
        workspace=workspace,
        actor=owner,
    )
    assert len(audit) == 1 and not bool(audit["allowed"].iloc[0])
