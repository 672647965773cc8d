"""A stored file is checked against the hash taken at intake before a job parses it: a file
changed in storage fails its document with a readable error, and the others carry on."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from batchnb.db.models import Document, QueueItem
from batchnb.services.submit import submit
from batchnb.services.workers import start_worker
from batchnb.services.workspace import Workspace
from tests.conftest import SAMPLES

PROMPT = "invoice number, date, total"


def test_a_file_changed_in_storage_fails_its_document_and_the_batch_carries_on(
    workspace: Workspace,
) -> None:
    files = [
        SAMPLES / "maplewood-print-invoice.txt",
        SAMPLES / "bluefin-office-supplies-invoice.pdf",
    ]
    batch = submit(files, PROMPT, workspace=workspace)  # no worker yet: nothing is parsed
    with workspace.db.read() as session:
        tampered = session.scalars(
            select(Document).where(Document.file_name == "maplewood-print-invoice.txt")
        ).one()
    root = workspace.storage.local_temp_dir
    assert root is not None
    stored = root.parent / tampered.storage_key
    stored.write_text("INVOICE\nInvoice Number: FORGED-1\nTotal: $1.00\n")

    worker = start_worker(workspace)
    try:
        progress = batch.wait(timeout=60)
    finally:
        worker.stop()

    assert (progress.completed, progress.failed) == (1, 1)
    with workspace.db.read() as session:
        failed = session.get(Document, tampered.id)
        items = session.scalars(select(QueueItem)).all()
        attempts = {item.payload["document_id"]: item.attempts for item in items}
    assert failed is not None and failed.error_kind == "changed"
    assert failed.error is not None
    assert "changed after it was taken in" in failed.error
    assert "submit the original file again" in failed.error
    assert attempts[tampered.id] == 1, "a changed file is not retried"
    results = batch.results().set_index("file_name")
    assert results.loc["bluefin-office-supplies-invoice.pdf", "invoice_number"] == "BOS-2024-0117"
    assert results.loc["maplewood-print-invoice.txt", "status"] == "failed"
    assert "FORGED" not in str(results.loc["maplewood-print-invoice.txt"].to_dict())


def test_an_unchanged_file_opens_as_stored(workspace: Workspace, tmp_path: Path) -> None:
    stored = workspace.storage.put(b"%PDF-1.4 some bytes")
    with workspace.storage.open_verified(stored.key, stored.content_hash) as handle:
        assert handle.read() == b"%PDF-1.4 some bytes"
