"""A batch's status, derived from its documents once the last one closes.

Closing runs after a document's outcome has committed, never inside it, and locks nothing: on
PostgreSQL a lock on the batch's row, held by a worker frozen mid-transaction, would stop every
other worker finishing a document of that batch. Without the lock, two documents closing at once
cannot both miss the close: each looks after its own commit, so the later look sees both. A
worker that dies between the commit and the look leaves the batch open; the sweep
:func:`close_settled_batches`, run with the reaper, closes it.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, bindparam, func, select, text, update

from batchnb.db.engine import Database
from batchnb.db.models import Document, ExtractionBatch, utcnow
from batchnb.db.statuses import BatchStatus, DocumentStatus

OPEN_DOCUMENT_STATUSES = (DocumentStatus.PENDING.value, DocumentStatus.PROCESSING.value)
OPEN_BATCH_STATUSES = (BatchStatus.PENDING.value, BatchStatus.PROCESSING.value)

# Run once per document, so built once (building and hashing a statement per call costs more
# than executing it); the status lists are literal SQL, as an IN list of bound parameters is
# rendered again on every call.
_DOCUMENT_OPEN = text("documents.status IN ('pending', 'processing')")
_ANY_OPEN_DOCUMENT = (
    select(Document.id).where(Document.batch_id == bindparam("batch"), _DOCUMENT_OPEN).limit(1)
)
_BATCH_OPEN = select(ExtractionBatch.id).where(
    ExtractionBatch.id == bindparam("batch"),
    text("extraction_batches.status IN ('pending', 'processing')"),
)
_DOCUMENT_COUNTS = (
    select(Document.status, func.count())
    .where(Document.batch_id == bindparam("batch"))
    .group_by(Document.status)
)
# Only an open batch closes (a cancelled or already closed one keeps its status and time).
_CLOSE_BATCH = (
    update(ExtractionBatch)
    .where(
        ExtractionBatch.id == bindparam("batch"),
        ExtractionBatch.status.in_(OPEN_BATCH_STATUSES),
    )
    .values(status=bindparam("new_status"), completed_at=bindparam("now"))
)
_SETTLED_OPEN_BATCHES = (
    select(ExtractionBatch.id)
    .where(
        ExtractionBatch.status.in_(OPEN_BATCH_STATUSES),
        ~select(Document.id)
        .where(Document.batch_id == ExtractionBatch.id, _DOCUMENT_OPEN)
        .exists(),
    )
    .limit(100)
)


def close_if_settled(db: Database, batch_ids: Iterable[int]) -> list[int]:
    """Close each open batch of ``batch_ids`` whose documents are all final; the closed ids.

    Call after the transaction that closed a document has committed. Most calls find a
    document still open and end after one indexed read, taking no write lock.
    """
    settled = []
    with db.connect() as connection:
        for batch_id in set(batch_ids):
            if connection.execute(_ANY_OPEN_DOCUMENT, {"batch": batch_id}).first() is not None:
                continue
            if connection.execute(_BATCH_OPEN, {"batch": batch_id}).first() is not None:
                settled.append(batch_id)
    closed = []
    for batch_id in settled:
        with db.begin() as connection:
            if _close(connection, batch_id):
                closed.append(batch_id)
    return closed


def close_settled_batches(db: Database) -> int:
    """Close open batches whose documents are all final (a sweep: the repair for a worker
    that died between a document's outcome and its batch's close); how many it closed."""
    with db.connect() as connection:
        batch_ids = list(connection.scalars(_SETTLED_OPEN_BATCHES))
    return len(close_if_settled(db, batch_ids)) if batch_ids else 0


def _close(connection: Connection, batch_id: int) -> bool:
    """Derive and store the final status (in the caller's transaction); False if it was
    closed already or a document reopened meanwhile."""
    counts = dict(connection.execute(_DOCUMENT_COUNTS, {"batch": batch_id}).all())
    if any(counts.get(status, 0) for status in OPEN_DOCUMENT_STATUSES):
        return False
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
    result = connection.execute(
        _CLOSE_BATCH, {"batch": batch_id, "new_status": status.value, "now": utcnow()}
    )
    return bool(result.rowcount)


def refresh_batch_status(connection: Connection, batch_id: int) -> bool:
    """Close the batch in the caller's transaction if its documents are all final (used by
    services that change documents themselves, e.g. a cancel that found nothing to cancel)."""
    if connection.execute(_ANY_OPEN_DOCUMENT, {"batch": batch_id}).first() is not None:
        return False
    return _close(connection, batch_id)
