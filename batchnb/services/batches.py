"""Creating batches and following them: the service functions behind CLI, API and widgets."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import insert, select, update

from batchnb.db.models import (
    BatchStatus,
    Document,
    DocumentStatus,
    ExtractedData,
    ExtractionBatch,
    ExtractionJob,
    ItemStatus,
    QueueItem,
    utcnow,
)
from batchnb.documents.intake import IncomingFile, Refusal, collect
from batchnb.errors import IntakeError, NotFoundError
from batchnb.extract import get_extractor, schema_from_prompt
from batchnb.queue import items
from batchnb.services.audit import record_event
from batchnb.services.processing import BATCH_QUEUE, PROCESS_DOCUMENT, refresh_batch_status
from batchnb.services.workspace import Workspace, default_workspace

Source = str | Path | tuple[str, bytes]
PROGRESS_KEYS = ("pending", "processing", "completed", "failed", "cancelled")


@dataclass(frozen=True)
class Progress:
    """Documents of a batch per status. ``retrying`` items count as pending."""

    pending: int = 0
    processing: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0

    @property
    def total(self) -> int:
        return self.pending + self.processing + self.completed + self.failed + self.cancelled

    @property
    def done(self) -> int:
        return self.completed + self.failed + self.cancelled

    @property
    def finished(self) -> bool:
        return self.done == self.total

    def as_dict(self) -> dict[str, int]:
        return {key: getattr(self, key) for key in PROGRESS_KEYS}


@dataclass
class Batch:
    """A handle on one batch: progress, waiting, results. Holds no database session."""

    id: int
    workspace: Workspace
    refused: list[Refusal] = field(default_factory=list)

    def info(self) -> ExtractionBatch:
        """The batch's row (a detached snapshot)."""
        with self.workspace.db.read() as session:
            batch = session.get(ExtractionBatch, self.id)
            if batch is None:
                raise NotFoundError(f"batch {self.id} does not exist")
            return batch

    @property
    def status(self) -> str:
        return self.info().status

    def progress(self) -> Progress:
        """Counts per status (one indexed aggregate query)."""
        return batch_progress(self.workspace, self.id)

    def wait(
        self,
        timeout: float | None = None,
        poll_seconds: float = 0.25,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> Progress:
        """Block until every document is final; raise TimeoutError after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            progress = self.progress()
            if on_progress is not None:
                on_progress(progress)
            if progress.finished:
                return progress
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(
                    f"batch {self.id} not finished after {timeout}s: {progress.as_dict()}"
                )
            time.sleep(poll_seconds)

    def results(self) -> pd.DataFrame:
        """One row per document: id, file name, status, error, then each extracted field."""
        return batch_results(self.workspace, self.id)


def submit(
    sources: Source | Iterable[Source],
    prompt: str,
    *,
    name: str | None = None,
    extractor: str = "offline",
    priority: int = 0,
    workspace: Workspace | None = None,
    owner: str | None = None,
    document_prompts: dict[str, str] | None = None,
) -> Batch:
    """Create a batch from paths, globs, folders or (name, bytes) pairs and queue every file.

    The prompt and extractor are checked before anything is stored. Files refused at intake
    (wrong type, empty, too large, duplicate, over the plan) are listed on ``batch.refused``;
    if every file is refused, :class:`IntakeError` says why.

    Parameters
    ----------
    document_prompts:
        Prompts for some documents by file name (per-document strategy); others use ``prompt``.
    """
    workspace = workspace or default_workspace()
    owner = owner or workspace.settings.user
    schema_from_prompt(prompt)
    for own_prompt in (document_prompts or {}).values():
        schema_from_prompt(own_prompt)
    get_extractor(extractor)
    if isinstance(sources, str | Path | tuple):
        sources = [sources]
    # The stored files are made durable together before any row names them.
    with workspace.storage.deferred_sync():
        intake = collect(sources, plan=workspace.plan, storage=workspace.storage)
    if not intake.accepted:
        reasons = "; ".join(f"{r.file_name}: {r.reason}" for r in intake.refused) or "no files"
        raise IntakeError(f"nothing to process: {reasons}")
    batch_id, messages = _create_rows(
        workspace,
        intake.accepted,
        prompt=prompt,
        name=name or _default_name(intake.accepted),
        extractor=extractor,
        priority=priority,
        owner=owner,
        document_prompts=document_prompts or {},
        refused=intake.refused,
    )
    workspace.runtime.dispatch(messages)
    return Batch(batch_id, workspace, list(intake.refused))


def _default_name(files: list[IncomingFile]) -> str:
    first = files[0].file_name
    return first if len(files) == 1 else f"{first} and {len(files) - 1} more"


def _create_rows(
    workspace: Workspace,
    files: list[IncomingFile],
    *,
    prompt: str,
    name: str,
    extractor: str,
    priority: int,
    owner: str,
    document_prompts: dict[str, str],
    refused: list[Refusal],
) -> tuple[int, list[tuple[int, int, Any]]]:
    """Insert the batch, its documents, jobs and queue items in one transaction."""
    now = utcnow()
    with workspace.db.write() as session:
        batch = ExtractionBatch(
            name=name[:255],
            owner=owner,
            status=BatchStatus.PENDING.value,
            strategy="per_document" if document_prompts else "global",
            prompt=prompt,
            extractor=extractor,
            plan=workspace.plan.name,
            options={"refused": [r.__dict__ for r in refused]},
            document_count=len(files),
            created_at=now,
            updated_at=now,
        )
        session.add(batch)
        session.flush()
        document_ids = session.scalars(
            insert(Document).returning(Document.id, sort_by_parameter_order=True),
            [
                {
                    "batch_id": batch.id,
                    "owner": owner,
                    "file_name": f.file_name,
                    "source": f.source,
                    "content_hash": f.content_hash,
                    "storage_key": f.storage_key,
                    "size_bytes": f.size_bytes,
                    "file_type": f.file_type,
                    "mime_type": f.mime_type,
                    "prompt": document_prompts.get(f.file_name),
                    "status": DocumentStatus.PENDING.value,
                    "created_at": now,
                    "updated_at": now,
                }
                for f in files
            ],
        ).all()
        job_ids = session.scalars(
            insert(ExtractionJob).returning(ExtractionJob.id, sort_by_parameter_order=True),
            [
                {
                    "batch_id": batch.id,
                    "document_id": document_id,
                    "owner": owner,
                    "status": DocumentStatus.PENDING.value,
                    "extractor": extractor,
                    "created_at": now,
                    "updated_at": now,
                }
                for document_id in document_ids
            ],
        ).all()
        item_ids = session.scalars(
            insert(QueueItem).returning(QueueItem.id, sort_by_parameter_order=True),
            [
                items.new_item_values(
                    BATCH_QUEUE,
                    PROCESS_DOCUMENT,
                    {"document_id": document_id, "job_id": job_id},
                    owner=owner,
                    now=now,
                    batch_id=batch.id,
                    priority=priority,
                )
                for document_id, job_id in zip(document_ids, job_ids, strict=True)
            ],
        ).all()
        record_event(
            session.connection(),
            owner,
            "submit",
            "batch",
            batch.id,
            {"documents": len(files), "refused": len(refused), "extractor": extractor},
        )
        batch_id = batch.id
    return batch_id, [(item_id, priority, None) for item_id in item_ids]


def batch_progress(workspace: Workspace, batch_id: int) -> Progress:
    """Counts per status of a batch's queue items."""
    with workspace.db.read() as session:
        counts = items.status_counts(session.connection(), batch_id)
    pending = counts.get(ItemStatus.PENDING, 0) + counts.get(ItemStatus.RETRYING, 0)
    return Progress(
        pending=pending,
        processing=counts.get(ItemStatus.PROCESSING, 0),
        completed=counts.get(ItemStatus.COMPLETED, 0),
        failed=counts.get(ItemStatus.FAILED, 0),
        cancelled=counts.get(ItemStatus.CANCELLED, 0),
    )


def get_batch(batch_id: int, workspace: Workspace | None = None) -> Batch:
    """A handle on an existing batch."""
    workspace = workspace or default_workspace()
    batch = Batch(batch_id, workspace)
    batch.info()
    return batch


def latest_batch(workspace: Workspace | None = None) -> Batch | None:
    """The most recently created batch, if any."""
    workspace = workspace or default_workspace()
    with workspace.db.read() as session:
        batch_id = session.scalar(
            select(ExtractionBatch.id).order_by(ExtractionBatch.id.desc()).limit(1)
        )
    return None if batch_id is None else Batch(batch_id, workspace)


def _flatten(value: Any, name: str, row: dict[str, Any]) -> None:
    if isinstance(value, dict) and "amount" in value:
        row[name] = value.get("amount")
        row[f"{name}_currency"] = value.get("currency")
    else:
        row[name] = value


def batch_results(workspace: Workspace, batch_id: int) -> pd.DataFrame:
    """One row per document of the batch, fields in schema order (money split in two)."""
    with workspace.db.read() as session:
        rows = session.execute(
            select(Document, ExtractedData)
            .outerjoin(ExtractedData, ExtractedData.document_id == Document.id)
            .where(Document.batch_id == batch_id)
            .order_by(Document.id, ExtractedData.id)
        ).all()
    records: dict[int, dict[str, Any]] = {}
    for document, extracted in rows:
        record: dict[str, Any] = {
            "document_id": document.id,
            "file_name": document.file_name,
            "status": document.status,
            "error": document.error,
        }
        if extracted is not None:
            for field_spec in extracted.schema.get("fields", []):
                _flatten(extracted.data.get(field_spec["name"]), field_spec["name"], record)
            record["confidence"] = extracted.confidence
        records[document.id] = record  # the newest result of a document wins
    return pd.DataFrame(list(records.values()))


def cancel_batch(batch_id: int, *, actor: str, workspace: Workspace | None = None) -> int:
    """Cancel a batch: pending documents never start, running ones stop at a checkpoint.

    Returns how many queue items were cancelled.
    """
    workspace = workspace or default_workspace()
    now = utcnow()
    with workspace.db.write() as session:
        batch = session.get(ExtractionBatch, batch_id)
        if batch is None:
            raise NotFoundError(f"batch {batch_id} does not exist")
        cancelled = items.cancel_items(session.connection(), batch_id=batch_id, now=now)
        session.execute(
            update(Document)
            .where(
                Document.batch_id == batch_id,
                Document.status.in_((DocumentStatus.PENDING, DocumentStatus.PROCESSING)),
            )
            .values(status=DocumentStatus.CANCELLED.value, updated_at=now)
        )
        session.execute(
            update(ExtractionJob)
            .where(
                ExtractionJob.batch_id == batch_id,
                ExtractionJob.status.in_((DocumentStatus.PENDING, DocumentStatus.PROCESSING)),
            )
            .values(status=DocumentStatus.CANCELLED.value, updated_at=now)
        )
        session.flush()
        if cancelled:
            batch.status = BatchStatus.CANCELLED.value
            batch.completed_at = now
        else:
            refresh_batch_status(session.connection(), batch_id)
        record_event(session.connection(), actor, "cancel", "batch", batch_id, {"items": cancelled})
    return cancelled
