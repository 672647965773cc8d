"""The ``process_document`` job: parse one stored document, extract, store the result.

The queue runner calls these hooks; the ones taking a session run inside the transaction that
also moves the queue item, so a document's row, its job row and its result always agree with
the queue.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from batchnb.db.engine import Database
from batchnb.db.models import (
    BatchStatus,
    Document,
    DocumentStatus,
    ExtractedData,
    ExtractionBatch,
    ExtractionJob,
    utcnow,
)
from batchnb.documents.parsers import parse_document
from batchnb.documents.storage import Storage
from batchnb.extract import get_extractor, schema_from_prompt
from batchnb.queue.items import LeasedItem
from batchnb.queue.runner import Checkpoint, JobHandler

PROCESS_DOCUMENT = "process_document"
BATCH_QUEUE = "batch_processing"


@dataclass(frozen=True)
class DocumentOutput:
    """What one successful run produced, written by :meth:`DocumentJobHandler.succeeded`."""

    data: dict[str, Any]
    evidence: dict[str, Any]
    schema: dict[str, Any]
    confidence: float | None
    page_count: int
    parser: str
    duration_ms: float


def _job_of(session: Session, item: LeasedItem) -> ExtractionJob:
    return session.execute(
        select(ExtractionJob).where(
            ExtractionJob.document_id == item.payload["document_id"],
            ExtractionJob.queue_item_id == item.id,
        )
    ).scalar_one()


def refresh_batch_status(session: Session, batch_id: int) -> None:
    """Derive a batch's status from its documents (a cancelled batch stays cancelled)."""
    batch = session.get(ExtractionBatch, batch_id)
    if batch is None or batch.status == BatchStatus.CANCELLED:
        return
    counts = dict(
        session.execute(
            select(Document.status, func.count())
            .where(Document.batch_id == batch_id)
            .group_by(Document.status)
        ).all()
    )
    open_count = counts.get(DocumentStatus.PENDING, 0) + counts.get(DocumentStatus.PROCESSING, 0)
    total = sum(counts.values())
    if open_count:
        status = BatchStatus.PROCESSING
    elif counts.get(DocumentStatus.FAILED, 0) == total and total:
        status = BatchStatus.FAILED
    elif counts.get(DocumentStatus.FAILED, 0):
        status = BatchStatus.COMPLETED_WITH_ERRORS
    elif counts.get(DocumentStatus.CANCELLED, 0) == total and total:
        status = BatchStatus.CANCELLED
    else:
        status = BatchStatus.COMPLETED
    if batch.status != status:
        batch.status = status.value
        if not open_count:
            batch.completed_at = utcnow()


class DocumentJobHandler(JobHandler):
    """Parse, extract and store one document of a batch."""

    def __init__(self, db: Database, storage: Storage) -> None:
        self.db = db
        self.storage = storage

    def _set_document(
        self, session: Session, item: LeasedItem, status: DocumentStatus, error: str | None
    ) -> None:
        session.execute(
            update(Document)
            .where(Document.id == item.payload["document_id"])
            .values(status=status.value, error=error, updated_at=utcnow())
        )

    def started(self, session: Session, item: LeasedItem) -> None:
        job = _job_of(session, item)
        job.status = DocumentStatus.PROCESSING.value
        job.started_at = utcnow()
        self._set_document(session, item, DocumentStatus.PROCESSING, None)
        if item.batch_id is not None:
            session.execute(
                update(ExtractionBatch)
                .where(
                    ExtractionBatch.id == item.batch_id,
                    ExtractionBatch.status == BatchStatus.PENDING.value,
                )
                .values(status=BatchStatus.PROCESSING.value)
            )

    def run(self, item: LeasedItem, checkpoint: Checkpoint) -> DocumentOutput:
        started = time.perf_counter()
        with self.db.read() as session:
            document = session.get(Document, item.payload["document_id"])
            if document is None:
                raise LookupError(f"document {item.payload['document_id']} no longer exists")
            batch = document.batch
            job = _job_of(session, item)
            prompt = job.prompt or document.prompt or batch.prompt or ""
            extractor_name = job.extractor
            storage_key, kind = document.storage_key, document.file_type
        data = self.storage.read(storage_key)
        checkpoint()
        parsed = parse_document(data, kind)
        checkpoint()
        schema = schema_from_prompt(prompt)
        result = get_extractor(extractor_name).extract(parsed, schema)
        return DocumentOutput(
            data=result.data(),
            evidence=result.evidence(),
            schema=schema.to_dict(),
            confidence=result.confidence(),
            page_count=parsed.page_count,
            parser=parsed.parser,
            duration_ms=(time.perf_counter() - started) * 1000,
        )

    def succeeded(self, session: Session, item: LeasedItem, output: DocumentOutput) -> None:
        job = _job_of(session, item)
        now = utcnow()
        session.add(
            ExtractedData(
                job_id=job.id,
                document_id=job.document_id,
                batch_id=job.batch_id,
                data=output.data,
                evidence=output.evidence,
                schema=output.schema,
                confidence=output.confidence,
                created_at=now,
            )
        )
        job.status = DocumentStatus.COMPLETED.value
        job.parser = output.parser
        job.error = None
        job.finished_at = now
        job.duration_ms = output.duration_ms
        session.execute(
            update(Document)
            .where(Document.id == job.document_id)
            .values(
                status=DocumentStatus.COMPLETED.value,
                error=None,
                page_count=output.page_count,
                updated_at=now,
            )
        )
        session.flush()
        refresh_batch_status(session, job.batch_id)

    def failed(self, session: Session, item: LeasedItem, error: str) -> None:
        job = _job_of(session, item)
        job.status = DocumentStatus.FAILED.value
        job.error = error
        job.finished_at = utcnow()
        self._set_document(session, item, DocumentStatus.FAILED, error)
        session.flush()
        refresh_batch_status(session, job.batch_id)

    def requeued(self, session: Session, item: LeasedItem, reason: str) -> None:
        job = _job_of(session, item)
        job.status = DocumentStatus.PENDING.value
        job.error = reason
        self._set_document(session, item, DocumentStatus.PENDING, None)

    def cancelled(self, session: Session, item: LeasedItem) -> None:
        job = _job_of(session, item)
        job.status = DocumentStatus.CANCELLED.value
        job.finished_at = utcnow()
        self._set_document(session, item, DocumentStatus.CANCELLED, None)
        session.flush()
        refresh_batch_status(session, job.batch_id)


def job_handlers(db: Database, storage: Storage) -> dict[str, JobHandler]:
    """The job types a workspace's workers run."""
    return {PROCESS_DOCUMENT: DocumentJobHandler(db, storage)}
