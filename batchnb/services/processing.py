"""The ``process_document`` job: parse one stored document, extract, store the result.

The queue runner calls these hooks; the ones taking a session run inside the transaction that
also moves the queue item, so a document's row, its job row and its result always agree with
the queue.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select, update
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


def refresh_batch_status(session: Session, batch_id: int) -> None:
    """Derive a batch's status from its documents (a cancelled batch stays cancelled).

    While any document is open the batch is processing; that is one indexed EXISTS, so
    finishing each document of a large batch stays cheap. The full count runs once, when the
    last document closes.
    """
    open_statuses = (DocumentStatus.PENDING.value, DocumentStatus.PROCESSING.value)
    still_open = session.scalar(
        select(Document.id)
        .where(Document.batch_id == batch_id, Document.status.in_(open_statuses))
        .limit(1)
    )
    if still_open is not None:
        session.execute(
            update(ExtractionBatch)
            .where(
                ExtractionBatch.id == batch_id,
                ExtractionBatch.status == BatchStatus.PENDING.value,
            )
            .values(status=BatchStatus.PROCESSING.value)
        )
        return
    counts = dict(
        session.execute(
            select(Document.status, func.count())
            .where(Document.batch_id == batch_id)
            .group_by(Document.status)
        ).all()
    )
    total = sum(counts.values())
    failed = counts.get(DocumentStatus.FAILED, 0)
    if total and failed == total:
        status = BatchStatus.FAILED
    elif failed:
        status = BatchStatus.COMPLETED_WITH_ERRORS
    elif total and counts.get(DocumentStatus.CANCELLED, 0) == total:
        status = BatchStatus.CANCELLED
    else:
        status = BatchStatus.COMPLETED
    session.execute(
        update(ExtractionBatch)
        .where(
            ExtractionBatch.id == batch_id,
            ExtractionBatch.status != BatchStatus.CANCELLED.value,
        )
        .values(status=status.value, completed_at=utcnow())
    )


class DocumentJobHandler(JobHandler):
    """Parse, extract and store one document of a batch.

    The item's payload names the document and its job, so every hook is a few updates by
    primary key.
    """

    def __init__(self, db: Database, storage: Storage) -> None:
        self.db = db
        self.storage = storage

    @staticmethod
    def _close(
        session: Session,
        item: LeasedItem,
        status: DocumentStatus,
        error: str | None,
        *,
        finished: bool,
        job_values: dict[str, Any] | None = None,
        document_values: dict[str, Any] | None = None,
    ) -> None:
        now = utcnow()
        job = {"status": status.value, "error": error, "updated_at": now, **(job_values or {})}
        if finished:
            job["finished_at"] = now
        session.execute(
            update(ExtractionJob).where(ExtractionJob.id == item.payload["job_id"]).values(**job)
        )
        session.execute(
            update(Document)
            .where(Document.id == item.payload["document_id"])
            .values(
                status=status.value,
                error=error if finished else None,
                updated_at=now,
                **(document_values or {}),
            )
        )
        if finished and item.batch_id is not None:
            refresh_batch_status(session, item.batch_id)

    def started(self, session: Session, item: LeasedItem) -> None:
        now = utcnow()
        session.execute(
            update(ExtractionJob)
            .where(ExtractionJob.id == item.payload["job_id"])
            .values(status=DocumentStatus.PROCESSING.value, started_at=now, updated_at=now)
        )
        session.execute(
            update(Document)
            .where(Document.id == item.payload["document_id"])
            .values(status=DocumentStatus.PROCESSING.value, error=None, updated_at=now)
        )
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
            found = session.execute(
                select(
                    Document.storage_key,
                    Document.file_type,
                    ExtractionJob.extractor,
                    func.coalesce(ExtractionJob.prompt, Document.prompt, ExtractionBatch.prompt),
                )
                .join(Document, Document.id == ExtractionJob.document_id)
                .join(ExtractionBatch, ExtractionBatch.id == ExtractionJob.batch_id)
                .where(ExtractionJob.id == item.payload["job_id"])
            ).one_or_none()
        if found is None:
            raise LookupError(f"job {item.payload['job_id']} no longer exists")
        storage_key, kind, extractor_name, prompt = found
        data = self.storage.read(storage_key)
        checkpoint()
        parsed = parse_document(data, kind)
        checkpoint()
        schema = schema_from_prompt(prompt or "")
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
        now = utcnow()
        session.execute(
            insert(ExtractedData).values(
                job_id=item.payload["job_id"],
                document_id=item.payload["document_id"],
                batch_id=item.batch_id,
                data=output.data,
                evidence=output.evidence,
                schema=output.schema,
                confidence=output.confidence,
                created_at=now,
            )
        )
        self._close(
            session,
            item,
            DocumentStatus.COMPLETED,
            None,
            finished=True,
            job_values={"parser": output.parser, "duration_ms": output.duration_ms},
            document_values={"page_count": output.page_count},
        )

    def failed(self, session: Session, item: LeasedItem, error: str) -> None:
        self._close(session, item, DocumentStatus.FAILED, error, finished=True)

    def requeued(self, session: Session, item: LeasedItem, reason: str) -> None:
        self._close(session, item, DocumentStatus.PENDING, reason, finished=False)

    def cancelled(self, session: Session, item: LeasedItem) -> None:
        self._close(session, item, DocumentStatus.CANCELLED, None, finished=True)


def job_handlers(db: Database, storage: Storage) -> dict[str, JobHandler]:
    """The job types a workspace's workers run."""
    return {PROCESS_DOCUMENT: DocumentJobHandler(db, storage)}
