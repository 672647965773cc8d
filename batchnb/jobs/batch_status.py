"""A batch's status, derived from its documents when the last one closes."""

from __future__ import annotations

from sqlalchemy import Connection, bindparam, func, select, update

from batchnb.db.models import Document, ExtractionBatch, utcnow
from batchnb.db.statuses import BatchStatus, DocumentStatus

OPEN_DOCUMENT_STATUSES = (DocumentStatus.PENDING.value, DocumentStatus.PROCESSING.value)

# Run once per document, so built once (building and hashing a statement per call costs more
# than executing it).
_ANY_OPEN_DOCUMENT = (
    select(Document.id)
    .where(Document.batch_id == bindparam("batch"), Document.status.in_(OPEN_DOCUMENT_STATUSES))
    .limit(1)
)
_DOCUMENT_COUNTS = (
    select(Document.status, func.count())
    .where(Document.batch_id == bindparam("batch"))
    .group_by(Document.status)
)
# PostgreSQL: two documents closing at once each see the other still open and neither would
# close the batch; locking the batch row first makes the second wait and then see the first.
# FOR NO KEY UPDATE, not FOR UPDATE: inserting the result row takes FOR KEY SHARE on the batch
# (its foreign key), which FOR UPDATE would wait for, deadlocking two closing documents.
# SQLite writes one transaction at a time already and compiles no FOR UPDATE.
_LOCK_BATCH = (
    select(ExtractionBatch.id)
    .where(ExtractionBatch.id == bindparam("batch"))
    .with_for_update(key_share=True)
)
_CLOSE_BATCH = (
    update(ExtractionBatch)
    .where(
        ExtractionBatch.id == bindparam("batch"),
        ExtractionBatch.status != BatchStatus.CANCELLED.value,
    )
    .values(status=bindparam("new_status"), completed_at=bindparam("now"))
)


def refresh_batch_status(connection: Connection, batch_id: int) -> None:
    """Derive a batch's status from its documents (a cancelled batch stays cancelled).

    While any document is open nothing changes (the lease marked the batch processing); that
    is one indexed lookup, so finishing each document of a large batch stays cheap. The full
    count runs once, when the last document closes.
    """
    connection.execute(_LOCK_BATCH, {"batch": batch_id})
    if connection.execute(_ANY_OPEN_DOCUMENT, {"batch": batch_id}).first() is not None:
        return
    counts = dict(connection.execute(_DOCUMENT_COUNTS, {"batch": batch_id}).all())
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
    connection.execute(
        _CLOSE_BATCH, {"batch": batch_id, "new_status": status.value, "now": utcnow()}
    )
