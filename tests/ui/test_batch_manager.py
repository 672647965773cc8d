"""The batch manager's state and the service call behind every action, on a real workspace."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import batchnb
from batchnb.queue.worker import Worker
from batchnb.services.workspace import Workspace, open_workspace
from batchnb.ui import BatchManager, BatchProgress, ResultsView
from batchnb.ui.batch_manager import LIVE_INTERVAL
from batchnb.ui.confirm import Operation, describe, read_facts
from tests.conftest import SAMPLES

PROMPT = "invoice number, date, total"
TEXT = SAMPLES / "maplewood-print-invoice.txt"
HTML = SAMPLES / "ridgeback-bicycle-invoice.html"
MARKDOWN = SAMPLES / "copperleaf-web-invoice.md"


def finished(workspace: Workspace, name: str, files: list[Path]) -> batchnb.Batch:
    batch = batchnb.submit(files, PROMPT, name=name, workspace=workspace)
    worker = batchnb.start_worker(workspace, threads=1)
    try:
        batch.wait(timeout=60, progress=False)
    finally:
        worker.stop()
    return batch


def failed(workspace: Workspace, name: str, files: list[Path]) -> batchnb.Batch:
    """Documents that failed for real: submitted for the openai extractor with a local
    server configured, extracted by a worker without that setting (a configuration error)."""
    submitter = open_workspace(
        home=str(workspace.settings.home), openai_base_url="http://127.0.0.1:9/v1"
    )
    try:
        batch = batchnb.submit(files, PROMPT, name=name, extractor="openai", workspace=submitter)
    finally:
        submitter.close()
    batch = batchnb.get_batch(batch.id, workspace=workspace)
    worker = batchnb.start_worker(workspace, threads=1)
    try:
        assert batch.wait(timeout=60, progress=False).failed == len(files)
    finally:
        worker.stop()
    return batch


@pytest.fixture
def seeded(workspace: Workspace) -> dict[str, batchnb.Batch]:
    """Three finished batches (one with a failure) and one waiting (no worker runs)."""
    return {
        "north": finished(workspace, "North invoices", [TEXT, HTML]),
        "south": finished(workspace, "South invoices", [MARKDOWN]),
        "west": failed(workspace, "West run", [TEXT]),
        "waiting": batchnb.submit([TEXT, MARKDOWN], PROMPT, name="Waiting", workspace=workspace),
    }


@pytest.fixture
def manager(workspace: Workspace, seeded: dict[str, batchnb.Batch]) -> Iterator[BatchManager]:
    widget = BatchManager(workspace=workspace, page_size=25)
    yield widget
    widget.close()


def names(manager: BatchManager) -> list[str]:
    return [row["name"] for row in manager.table.rows]


def sent_by(manager: BatchManager) -> list[tuple[dict[str, Any], list[Any]]]:
    """Record what the table sends to the browser (the comm has no front end in a test)."""
    messages: list[tuple[dict[str, Any], list[Any]]] = []
    manager.table.send = lambda content, buffers=None: messages.append(  # type: ignore[method-assign]
        (content, list(buffers or []))
    )
    return messages


# -- the table ---------------------------------------------------------------------------------


def test_lists_the_page_newest_first_with_counts(manager: BatchManager, seeded: Any) -> None:
    table = manager.table
    assert names(manager) == ["Waiting", "West run", "South invoices", "North invoices"]
    assert table.total == 4 and table.pages == 1
    north = next(row for row in table.rows if row["name"] == "North invoices")
    assert north["completed"] == 2 and north["document_count"] == 2
    assert north["created_at"].endswith("+00:00")
    assert table.live  # "Waiting" is pending: the page follows it
    assert table.options["admin"] is False
    assert "offline" in table.options["extractors"]
    assert repr(manager) == "BatchManager(page 1 of 1, 4 of 4 batches, 0 selected)"


def test_filters_search_and_sort_are_server_side(manager: BatchManager, seeded: Any) -> None:
    table = manager.table
    table.has_failures = "yes"
    assert names(manager) == ["West run"]
    table.has_failures = "no"
    table.status = "completed"
    assert names(manager) == ["South invoices", "North invoices"]
    table.status = ""
    table.has_failures = ""
    table.search = "ridgeback"  # a file name in one batch
    assert names(manager) == ["North invoices"]
    table.search = ""
    table.sort, table.descending = "name", False
    assert names(manager) == ["North invoices", "South invoices", "Waiting", "West run"]
    table.sort = "document_count"
    assert names(manager)[0] in ("South invoices", "West run")
    today = datetime.now(UTC).date()
    table.created_from = (today + timedelta(days=1)).isoformat()
    assert table.rows == [] and table.total == 0
    table.created_from = today.isoformat()
    table.created_to = today.isoformat()  # the whole day, inclusive
    assert table.total == 4


def test_pages_and_a_filter_change_goes_back_to_page_one(workspace: Workspace, seeded: Any) -> None:
    manager = BatchManager(workspace=workspace, page_size=3)
    table = manager.table
    assert (table.pages, len(table.rows)) == (2, 3)
    table.page = 2
    assert names(manager) == ["North invoices"]
    table.search = "invoices"
    assert table.page == 1 and names(manager) == ["South invoices", "North invoices"]
    table.page_size = 1
    assert table.pages == 2 and len(table.rows) == 1
    manager.close()


def test_a_bad_filter_is_shown_not_raised(workspace: Workspace, seeded: Any) -> None:
    manager = BatchManager(workspace=workspace)
    manager.table.owner = "somebody-else"  # a non-admin may list only their own batches
    assert manager.table.message["kind"] == "error"
    assert "may not list the batches of 'somebody-else'" in manager.table.message["text"]
    manager.table.owner = ""
    assert manager.table.message == {} and manager.table.total == 4
    manager.close()


def test_an_admin_sees_every_owner_and_filters_by_owner(workspace: Workspace, seeded: Any) -> None:
    home = str(workspace.settings.home)
    other = open_workspace(home=home, user="bob")
    finished(other, "Bob's batch", [TEXT])
    admin = open_workspace(home=home, user="carol", admins="carol")
    manager = BatchManager(workspace=admin)
    assert manager.table.options["admin"] is True
    assert manager.table.total == 5
    manager.table.owner = "bob"
    assert names(manager) == ["Bob's batch"]
    manager.close()
    other.close()
    admin.close()


def test_the_page_follows_running_batches_on_the_event_loop(
    workspace: Workspace, seeded: dict[str, batchnb.Batch], worker: Worker
) -> None:
    async def follow() -> None:
        manager = BatchManager(workspace=workspace)
        assert manager.table.live
        deadline = asyncio.get_running_loop().time() + 60
        while manager.table.live and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(LIVE_INTERVAL / 2)
        waiting = next(row for row in manager.table.rows if row["name"] == "Waiting")
        assert waiting["status"] == "completed" and waiting["completed"] == 2
        assert manager._task is not None and manager._task.done()
        manager.close()

    asyncio.run(follow())


# -- confirmations and operations --------------------------------------------------------------


def test_each_dialog_says_what_will_happen(workspace: Workspace, seeded: Any) -> None:
    ids = [seeded[name].id for name in ("north", "south", "west")]
    facts = read_facts(ids, workspace)
    text, possible = describe(Operation("delete", tuple(ids)), facts)
    assert text.startswith("Delete 3 batches: 4 documents and their files.") and possible
    text, possible = describe(Operation("retry", tuple(ids)), facts)
    assert text.startswith("Retry 1 failed document of 1 batch") and possible
    text, possible = describe(Operation("retry", (ids[0],)), facts[:1])
    assert "nothing to retry" in text and not possible
    waiting = read_facts([seeded["waiting"].id], workspace)
    text, _ = describe(Operation("cancel", (seeded["waiting"].id,)), waiting)
    assert text.startswith("Cancel 1 batch: 2 documents waiting or running will not be extracted")
    text, possible = describe(Operation("set_status", tuple(ids), {"status": ""}), facts)
    assert not possible


def test_delete_through_the_dialog(manager: BatchManager, seeded: Any) -> None:
    ids = [seeded["north"].id, seeded["south"].id]
    manager.table.selected = ids
    manager._handle_message(None, {"type": "action", "action": "delete", "ids": ids}, [])
    dialog = manager.table.dialog
    assert dialog["kind"] == "confirm" and dialog["stage"] == "ask" and dialog["danger"]
    assert dialog["title"] == "Delete 2 batches?"
    assert dialog["text"].startswith("Delete 2 batches: 3 documents and their files.")
    manager._handle_message(None, {"type": "confirm", "choices": {}}, [])
    assert manager.table.dialog["stage"] == "done"
    assert manager.table.dialog["result"].startswith("Deleted 2 batches: 3 documents")
    assert manager.table.message["kind"] == "success"
    assert manager.table.selected == []
    assert names(manager) == ["Waiting", "West run"]
    for batch_id in ids:
        with pytest.raises(batchnb.NotFoundError):
            batchnb.get_batch(batch_id, workspace=manager.workspace)
    manager._handle_message(None, {"type": "close_dialog"}, [])
    assert manager.table.dialog == {}


def test_cancel_a_waiting_batch(manager: BatchManager, seeded: Any) -> None:
    waiting = seeded["waiting"]
    manager.ask("cancel", [waiting.id])
    manager.confirm()
    assert manager.table.dialog["result"] == "Cancelled 1 batch: 2 queue items stopped."
    assert waiting.status == "cancelled"
    row = next(row for row in manager.table.rows if row["id"] == waiting.id)
    assert row["status"] == "cancelled" and row["cancelled"] == 2
    assert not manager.table.live


def test_retry_failed_with_another_extractor_completes(
    manager: BatchManager, seeded: Any, worker: Worker
) -> None:
    west = seeded["west"]
    manager.ask("retry", [west.id])
    choices = dict(manager.table.dialog["choices"]["extractor"])
    assert "offline" in choices and "" in choices  # "" = as before
    manager.confirm({"extractor": "offline"})
    assert manager.table.dialog["result"] == (
        "Queued 1 failed document again with the offline extractor."
    )
    assert west.wait(timeout=60, progress=False).completed == 1
    # Pages are cached for about a second (workers do not invalidate them): poll, as the page does.
    deadline = time.monotonic() + 10
    while True:
        manager.reload()
        row = next(row for row in manager.table.rows if row["id"] == west.id)
        if row["status"] == "completed" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert row["status"] == "completed" and row["failed"] == 0


def test_set_status_and_its_refusal_for_open_documents(manager: BatchManager, seeded: Any) -> None:
    west, waiting = seeded["west"], seeded["waiting"]
    manager.ask("set_status", [west.id], {"status": "completed"})
    manager.confirm()
    assert manager.table.dialog["result"].startswith("Set 1 batch to completed")
    assert west.status == "completed"
    manager.ask("set_status", [waiting.id, west.id], {"status": "failed"})
    manager.confirm()
    dialog = manager.table.dialog
    assert dialog["stage"] == "failed"
    assert "while documents are pending or processing" in dialog["error"]
    assert manager.table.message["text"].startswith("Nothing changed:")
    assert (west.status, waiting.status) == ("completed", "pending")


def test_another_user_is_refused_and_nothing_changes(
    workspace: Workspace, seeded: dict[str, batchnb.Batch]
) -> None:
    home = str(workspace.settings.home)
    mallory = open_workspace(home=home, user="mallory")
    own = finished(mallory, "Mallory's batch", [TEXT])
    manager = BatchManager(workspace=mallory)
    assert names(manager) == ["Mallory's batch"]
    north = seeded["north"]
    # Her own batch and a colleague's: refused as a whole, so her own is kept too.
    manager.ask("delete", [own.id, north.id])
    assert manager.table.dialog["text"].startswith("Delete 2 batches: 3 documents")
    manager.confirm()
    dialog = manager.table.dialog
    assert dialog["stage"] == "failed"
    assert f"user 'mallory' may not delete batch {north.id}" in dialog["error"]
    assert batchnb.get_batch(own.id, workspace=workspace).status == "completed"
    assert batchnb.get_batch(north.id, workspace=workspace).progress(cached=False).completed == 2
    events = batchnb.list_audit_events(
        actor_filter="mallory", action="delete", workspace=workspace, actor="root"
    )
    assert not events.empty and not events["allowed"].astype(bool).any()
    manager.close()
    mallory.close()


def test_without_a_selection_nothing_opens(manager: BatchManager) -> None:
    manager._handle_message(None, {"type": "action", "action": "delete", "ids": []}, [])
    assert manager.table.dialog == {}
    assert manager.table.message == {"text": "Select at least one batch first.", "kind": "error"}


# -- export and download -----------------------------------------------------------------------


def test_export_inline_then_download_in_chunks(manager: BatchManager, seeded: Any) -> None:
    ids = [seeded["north"].id, seeded["west"].id]
    manager.ask("export", ids)
    dialog = manager.table.dialog
    assert dialog["kind"] == "export" and dialog["stage"] == "ask"
    assert dialog["text"] == (
        "Export 2 documents with results from 2 batches "
        "(1 document failed, cancelled or waiting left out)."
    )
    assert ["xlsx", "Excel (.xlsx)"] in dialog["choices"]["format"]
    manager.confirm({"format": "csv", "mode": "normal"})  # no worker: written here, at once
    dialog = manager.table.dialog
    assert dialog["stage"] == "ready", dialog
    assert dialog["progress"] == {"done": 2, "total": 2}
    assert dialog["file"]["name"].endswith(".csv")
    messages = sent_by(manager)
    from batchnb.ui.download import send_file

    assert manager.exporting.handle is not None
    path = manager.exporting.handle.path
    assert path is not None
    send_file(manager.table, path, chunk_bytes=100)
    kinds = [content["type"] for content, _ in messages]
    assert kinds[0] == "file_begin" and kinds[-1] == "file_end"
    assert kinds.count("file_chunk") == -(-path.stat().st_size // 100)
    data = b"".join(bytes(buffers[0]) for content, buffers in messages if buffers)
    assert data == path.read_bytes()
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert sorted(row["file_name"] for row in rows) == sorted([TEXT.name, HTML.name])
    messages.clear()
    manager._handle_message(None, {"type": "download"}, [])
    assert messages[0][0] == {
        "type": "file_begin",
        "name": path.name,
        "size": path.stat().st_size,
        "mime": "text/csv",
    }


def test_export_on_the_queue_is_followed_until_ready(
    manager: BatchManager, seeded: Any, worker: Worker
) -> None:
    """With a worker alive the export goes to the exports queue; the dialog follows its row."""

    started: list[str] = []

    async def run() -> dict[str, Any]:
        manager.ask("export", [seeded["north"].id, seeded["south"].id])
        manager.confirm({"format": "json", "mode": "normal"})
        started.append(manager.table.dialog["status"])
        deadline = asyncio.get_running_loop().time() + 60
        while manager.table.dialog.get("stage") == "running":
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.1)
        return manager.table.dialog

    dialog = asyncio.run(run())
    assert dialog["stage"] == "ready", dialog
    assert started == ["Writing JSON on the exports queue…"]
    assert dialog["file"]["name"].endswith(".json")
    handle = manager.exporting.handle
    assert handle is not None and handle.info().status == "completed"
    assert handle.info().documents_done == 3


def test_an_export_refusal_is_shown(manager: BatchManager, seeded: Any) -> None:
    manager.ask("export", [seeded["north"].id])
    manager.confirm({"format": "csv", "mode": "sheets"})  # sheets is Excel's only
    dialog = manager.table.dialog
    assert dialog["stage"] == "failed" and "sheets" in dialog["error"]


# -- opening a batch ---------------------------------------------------------------------------


def test_open_shows_the_batch_under_the_table(manager: BatchManager, seeded: Any) -> None:
    north = seeded["north"]
    manager._handle_message(None, {"type": "action", "action": "open", "ids": [north.id]}, [])
    assert manager.table.opened == north.id
    progress, review = manager.detail.children
    assert isinstance(progress, BatchProgress) and progress.finished
    assert isinstance(review, ResultsView) and review.batch.id == north.id
    manager.ask("delete", [north.id])
    manager.confirm()
    assert manager.table.opened == 0 and manager.detail.children == ()


def test_a_refresh_in_flight_does_not_undo_a_filter_change(
    workspace: Workspace, seeded: dict[str, batchnb.Batch]
) -> None:
    """The page refreshes itself while "Waiting" waits; a filter changed while a refresh is
    being read keeps its own rows when that older read comes back."""

    async def run() -> list[str]:
        manager = BatchManager(workspace=workspace)
        assert manager.table.live
        read = manager.read_page
        started = asyncio.Event()
        loop = asyncio.get_running_loop()

        def slow_read(query: dict[str, Any] | None = None) -> Any:
            loop.call_soon_threadsafe(started.set)
            time.sleep(0.5)  # a slow database: the user acts meanwhile
            return read(query)

        manager.read_page = slow_read  # type: ignore[method-assign]
        await asyncio.wait_for(started.wait(), timeout=10)
        manager.table.search = "North"  # read at once, on the loop
        await asyncio.sleep(1.0)  # the older read has come back by now
        shown = names(manager)
        manager.close()
        return shown

    assert asyncio.run(run()) == ["North invoices"]
