"""Batches end to end: intake, queue, a real worker, results, errors, cancel."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select

from batchnb.db.models import AuditEvent, Document, ExtractedData, ExtractionBatch
from batchnb.errors import ExtractorError, IntakeError, SchemaError
from batchnb.queue.worker import Worker
from batchnb.services.manage import cancel_batch
from batchnb.services.submit import submit
from batchnb.services.workers import start_worker
from batchnb.services.workspace import Workspace, open_workspace

from .conftest import SAMPLES

PROMPT = "invoice number, date, total"


def _count(workspace: Workspace, model: type) -> int:
    with workspace.db.read() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_samples_end_to_end(workspace: Workspace, worker: Worker) -> None:
    batch = submit([SAMPLES], PROMPT, workspace=workspace)
    progress = batch.wait(timeout=60)
    assert progress.completed == 7 and progress.failed == 0
    assert batch.status == "completed"
    results = batch.results().set_index("file_name")
    # The same columns and types as to_dataframe() and every export (one flattener).
    assert list(results.columns[:4]) == ["document_id", "batch_id", "status", "error"]
    row = results.loc["bluefin-office-supplies-invoice.pdf"]
    assert row["invoice_number"] == "BOS-2024-0117"
    assert row["date"] == pd.Timestamp("2024-03-15")
    assert row["total"] == pytest.approx(1234.50)
    assert row["total_currency"] == "USD"
    assert results.loc["maplewood-print-invoice.txt", "invoice_number"] == "TXT-0042"


def test_corrupt_document_fails_alone_with_a_readable_error(
    workspace: Workspace, worker: Worker
) -> None:
    sources = [
        ("broken.pdf", b"%PDF-1.7\n1 0 obj << /Type /Catalog >> garbage without xref"),
        ("scan.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64),
        SAMPLES / "maplewood-print-invoice.txt",
    ]
    batch = submit(sources, PROMPT, workspace=workspace)
    progress = batch.wait(timeout=60)
    assert (progress.completed, progress.failed) == (1, 2)
    assert batch.status == "completed_with_errors"
    errors = batch.results().set_index("file_name")["error"]
    assert errors["broken.pdf"].startswith("not a readable PDF")
    assert "PNG" in errors["scan.png"]
    assert errors.isna()["maplewood-print-invoice.txt"]
    # Each failure keeps the kind it was raised with, whatever its message says.
    failures = batch.failures().set_index("file_name")
    assert failures.loc["broken.pdf", "error_kind"] == "corrupt"
    assert failures.loc["scan.png", "error_kind"] == "corrupt"
    assert list(failures.index) == ["broken.pdf", "scan.png"]
    with workspace.db.read() as session:
        failed_attempts = session.scalars(
            select(Document.status).where(Document.file_name == "broken.pdf")
        ).all()
    assert failed_attempts == ["failed"]


def test_refused_files_are_reported_and_the_rest_goes_on(workspace: Workspace) -> None:
    text = (SAMPLES / "maplewood-print-invoice.txt").read_bytes()
    batch = submit(
        [("a.txt", text), ("copy.txt", text), ("empty.txt", b""), ("fake.pdf", b"hello")],
        PROMPT,
        workspace=workspace,
    )
    reasons = {r.file_name: r.reason for r in batch.refused}
    assert set(reasons) == {"copy.txt", "empty.txt", "fake.pdf"}
    assert "duplicate" in reasons["copy.txt"]
    assert batch.progress().total == 1


def test_nothing_accepted_is_an_intake_error(workspace: Workspace) -> None:
    with pytest.raises(IntakeError, match="empty"):
        submit([("empty.txt", b"")], PROMPT, workspace=workspace)
    assert _count(workspace, ExtractionBatch) == 0


@pytest.mark.parametrize(
    ("prompt", "extractor", "error"),
    [("", "offline", SchemaError), (PROMPT, "no-such-extractor", ExtractorError)],
)
def test_bad_prompt_or_extractor_stores_nothing(
    workspace: Workspace, prompt: str, extractor: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        submit([SAMPLES], prompt, extractor=extractor, workspace=workspace)
    assert _count(workspace, ExtractionBatch) == 0
    assert not any(Path(workspace.settings.storage_url).rglob("*.*"))


def test_per_document_prompts(workspace: Workspace, worker: Worker) -> None:
    batch = submit(
        [SAMPLES / "maplewood-print-invoice.txt", SAMPLES / "ridgeback-bicycle-invoice.html"],
        "total",
        document_prompts={"ridgeback-bicycle-invoice.html": "invoice number, total"},
        workspace=workspace,
    )
    batch.wait(timeout=60)
    results = batch.results().set_index("file_name")
    assert results.loc["ridgeback-bicycle-invoice.html", "invoice_number"] == "INV-H-311"
    assert results.isna().loc["maplewood-print-invoice.txt", "invoice_number"]
    assert batch.info().strategy == "per_document"


def test_cancelled_batch_never_starts(workspace: Workspace) -> None:
    batch = submit([SAMPLES], PROMPT, workspace=workspace)
    assert cancel_batch(batch.id, workspace=workspace) == 7
    worker = start_worker(workspace, threads=2)
    try:
        progress = batch.wait(timeout=30)
    finally:
        worker.stop()
    assert progress.as_dict() == {
        "pending": 0,
        "processing": 0,
        "completed": 0,
        "failed": 0,
        "cancelled": 7,
    }
    assert batch.status == "cancelled"
    assert _count(workspace, ExtractedData) == 0
    with workspace.db.read() as session:
        actions = session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions == ["submit", "cancel"]


def test_rerunning_the_same_files_stores_bytes_once(workspace: Workspace) -> None:
    submit([SAMPLES], PROMPT, workspace=workspace)
    submit([SAMPLES], PROMPT, workspace=workspace)
    stored = [p for p in Path(workspace.settings.storage_url).rglob("*") if p.is_file()]
    assert len(stored) == 7


def test_immediate_mode_runs_inline(tmp_path: Path) -> None:
    workspace = open_workspace(home=str(tmp_path / "h"), queue_url="memory://")
    try:
        batch = submit([SAMPLES / "maplewood-print-invoice.txt"], PROMPT, workspace=workspace)
        assert batch.progress().completed == 1
        assert batch.results().loc[0, "invoice_number"] == "TXT-0042"
    finally:
        workspace.close()


def test_postgres_workspace_end_to_end(postgres_workspace: Workspace) -> None:
    worker = start_worker(postgres_workspace, threads=2)
    try:
        batch = submit([SAMPLES], PROMPT, workspace=postgres_workspace)
        progress = batch.wait(timeout=60)
    finally:
        worker.stop()
    assert progress.completed == 7
    assert batch.results()["invoice_number"].notna().all()


def test_redis_queue_end_to_end(redis_workspace: Workspace) -> None:
    worker = start_worker(redis_workspace, threads=2)
    try:
        batch = submit([SAMPLES], PROMPT, workspace=redis_workspace, priority=5)
        progress = batch.wait(timeout=60)
    finally:
        worker.stop()
    assert progress.completed == 7


def test_start_worker_twice_returns_the_running_worker(workspace: Workspace) -> None:
    first = start_worker(workspace, threads=1)
    try:
        assert start_worker(workspace, threads=1) is first
    finally:
        first.stop()
    second = start_worker(workspace, threads=1)
    try:
        assert second is not first and second.running
    finally:
        second.stop()
