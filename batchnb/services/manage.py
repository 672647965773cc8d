"""Changing batches on a user's behalf: retry, cancel, delete, bulk status; the audit trail.

Every function takes the acting user (default: the workspace user, i.e. ``JUPYTERHUB_USER``
or the OS user), checks through :func:`batchnb.services.access.authorize` that they own the
batch or are an admin (a refusal is audited and nothing changes), writes its own audit event
in the same transaction as the change, and invalidates the cached summaries afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, delete, func, select, update
from sqlalchemy.orm import Session

from batchnb.cache import ANALYTICS, BATCHES, PROGRESS
from batchnb.db.models import Document, ExtractedData, ExtractionBatch, ExtractionJob, utcnow
from batchnb.db.statuses import BatchStatus, DocumentStatus
from batchnb.errors import BatchStateError, ConfigurationError, NotFoundError
from batchnb.extract import schema_from_prompt
from batchnb.jobs.batch_status import OPEN_DOCUMENT_STATUSES, refresh_batch_status
from batchnb.jobs.documents import enqueue_document_jobs
from batchnb.queue import items
from batchnb.queue.messages import Message
from batchnb.services import display
from batchnb.services.access import authorize
from batchnb.services.audit import record_event
from batchnb.services.storage_gc import remove_unreferenced
from batchnb.services.workspace import Workspace, acting

CHANGED_NAMESPACES = (BATCHES, PROGRESS, ANALYTICS)
"""Cache namespaces whose entries a change to batches makes stale."""
BULK_STATUSES = ("cancelled", "completed", "failed")
"""Statuses :func:`bulk_update_status` may set; the others are derived from the documents."""
_CHUNK = 500

T = TypeVar("T")


@dataclass(frozen=True)
class DeleteSummary:
    """What :func:`delete_batch` removed."""

    documents: int
    files_removed: int
    stopped: int = 0
    """Queue items that were still waiting or running."""

    def _repr_html_(self) -> str:
        facts = [
            ("documents", self.documents),
            ("files removed", self.files_removed),
            ("work stopped", f"{self.stopped} queue items"),
        ]
        return display.card("Batch deleted", facts)


def _chunks(values: Sequence[T], size: int = _CHUNK) -> Iterator[list[T]]:
    """Slices small enough for an IN list on every database (SQLite caps parameters)."""
    for start in range(0, len(values), size):
        yield list(values[start : start + size])


def _invalidate(workspace: Workspace) -> None:
    workspace.cache.invalidate(*CHANGED_NAMESPACES)


def _cancel_rows(session: Session, batch: ExtractionBatch, now: datetime) -> int:
    """Cancel a batch's open work in the caller's transaction; returns the items cancelled.

    Waiting items never start; a running item's worker sees the cancellation at its next
    checkpoint and writes nothing more.
    """
    connection = session.connection()
    cancelled = items.cancel_items(connection, batch_id=batch.id, now=now)
    for model in (Document, ExtractionJob):
        session.execute(
            update(model)
            .where(model.batch_id == batch.id, model.status.in_(OPEN_DOCUMENT_STATUSES))
            .values(status=DocumentStatus.CANCELLED.value, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    return cancelled


def cancel_batch(
    batch_id: int, *, actor: str | None = None, workspace: Workspace | None = None
) -> int:
    """Cancel a batch: pending documents never start, running ones stop at a checkpoint.

    Returns how many queue items were cancelled. A batch with nothing left to stop keeps its
    status (the event is still audited).

    Raises
    ------
    NotFoundError
        The batch does not exist.
    PermissionDeniedError
        ``actor`` neither owns the batch nor is an admin.
    """
    workspace, actor = acting(workspace, actor)
    authorize(workspace, actor, "cancel", [batch_id])
    now = utcnow()
    with workspace.db.write() as session:
        batch = session.get(ExtractionBatch, batch_id)
        if batch is None:
            raise NotFoundError(f"batch {batch_id} does not exist")
        cancelled = _cancel_rows(session, batch, now)
        session.flush()
        if cancelled:
            batch.status = BatchStatus.CANCELLED.value
            batch.completed_at = now
        else:
            refresh_batch_status(session.connection(), batch_id)
        record_event(session.connection(), actor, "cancel", "batch", batch_id, {"items": cancelled})
    _invalidate(workspace)
    return cancelled


def delete_batch(
    batch_id: int, *, actor: str | None = None, workspace: Workspace | None = None
) -> DeleteSummary:
    """Delete a batch with its documents, jobs, results and queue items, and its unshared files.

    Open work is cancelled in the same transaction, so a worker running one of its documents
    stops at its next checkpoint and writes nothing (its item is gone). Rows go through the
    foreign keys' ``ON DELETE CASCADE``; exports of the batch are kept with no batch. Stored
    files are removed only after the rows are committed, and only when no other document (of
    any batch) still uses the same bytes, checked again under the lock that submits take to
    insert rows (see :mod:`batchnb.services.storage_gc`); the removed keys are recorded in a
    ``remove_files`` audit event. A file that cannot be removed is logged, not raised.

    Raises
    ------
    NotFoundError
        The batch does not exist.
    PermissionDeniedError
        ``actor`` neither owns the batch nor is an admin.
    """
    workspace, actor = acting(workspace, actor)
    authorize(workspace, actor, "delete", [batch_id])
    now = utcnow()
    with workspace.db.begin() as connection:
        found = connection.execute(
            select(ExtractionBatch.name, ExtractionBatch.owner).where(
                ExtractionBatch.id == batch_id
            )
        ).one_or_none()
        if found is None:
            raise NotFoundError(f"batch {batch_id} does not exist")
        stopped = items.cancel_items(connection, batch_id=batch_id, now=now)
        keys = sorted(
            connection.scalars(
                select(Document.storage_key).where(Document.batch_id == batch_id).distinct()
            )
        )
        counts = {
            name: _count(connection, model, batch_id)
            for name, model in (
                ("documents", Document),
                ("jobs", ExtractionJob),
                ("results", ExtractedData),
            )
        }
        connection.execute(delete(ExtractionBatch).where(ExtractionBatch.id == batch_id))
        still_used: set[str] = set()
        for chunk in _chunks(keys):
            still_used.update(
                connection.scalars(
                    select(Document.storage_key).where(Document.storage_key.in_(chunk)).distinct()
                )
            )
        unshared = [key for key in keys if key not in still_used]
        record_event(
            connection,
            actor,
            "delete",
            "batch",
            batch_id,
            {
                "name": found.name,
                "owner": found.owner,
                **counts,
                "stopped": stopped,
                "files": len(unshared),
            },
        )
    _invalidate(workspace)
    removed = remove_unreferenced(
        workspace.db,
        workspace.storage,
        unshared,
        actor=actor,
        batch_id=batch_id,
        owner=found.owner,
    )
    return DeleteSummary(documents=counts["documents"], files_removed=removed, stopped=stopped)


def _count(connection: Connection, model: Any, batch_id: int) -> int:
    return int(
        connection.scalar(select(func.count()).select_from(model).where(model.batch_id == batch_id))
        or 0
    )


def retry_failed(
    batch_id: int,
    *,
    document_ids: Sequence[int] | None = None,
    prompt: str | None = None,
    extractor: str | None = None,
    actor: str | None = None,
    workspace: Workspace | None = None,
) -> int:
    """Queue the failed documents of a batch again; returns how many were queued.

    Each document gets a new job and a new queue item; its earlier jobs and items stay as
    history. Completed and cancelled documents are left alone.

    Parameters
    ----------
    document_ids:
        Only these documents (each must belong to the batch and have failed); default every
        failed document of the batch.
    prompt:
        Extract these fields instead (for these jobs only); default: what the document's
        last job used (its own prompt, else the batch's prompt, schema or templates).
    extractor:
        Use this extractor instead; default the one the document's last job used.

    Raises
    ------
    NotFoundError
        The batch, or one of ``document_ids`` in it, does not exist.
    BatchnbError
        One of ``document_ids`` has not failed.
    PermissionDeniedError
        ``actor`` neither owns the batch nor is an admin.
    """
    workspace, actor = acting(workspace, actor)
    if prompt is not None:
        schema_from_prompt(prompt)
    if extractor is not None:
        workspace.extractors.check(extractor)
    details: dict[str, Any] = {"prompt": prompt, "extractor": extractor}
    authorize(workspace, actor, "retry", [batch_id], details)
    now = utcnow()
    with workspace.db.write() as session:
        connection = session.connection()
        batch = session.get(ExtractionBatch, batch_id)
        if batch is None:
            raise NotFoundError(f"batch {batch_id} does not exist")
        chosen = _failed_documents(connection, batch_id, document_ids)
        messages: list[Message] = []
        if chosen:
            messages = _queue_again(connection, batch, chosen, prompt, extractor, now)
            if batch.status not in (BatchStatus.PENDING, BatchStatus.PROCESSING):
                # Closed batches reopen; the worker closes them again when the last one ends.
                batch.status = BatchStatus.PENDING.value
                batch.completed_at = None
                session.flush()
            refresh_batch_status(connection, batch_id)
        record_event(
            connection,
            actor,
            "retry",
            "batch",
            batch_id,
            {**details, "documents": len(chosen), "document_ids": chosen[:100]},
        )
    workspace.runtime.dispatch(messages)
    _invalidate(workspace)
    return len(chosen)


def _failed_documents(
    connection: Connection, batch_id: int, document_ids: Sequence[int] | None
) -> list[int]:
    """The ids to retry, checked: all failed ones of the batch, or the chosen ones."""
    if document_ids is None:
        return list(
            connection.scalars(
                select(Document.id)
                .where(Document.batch_id == batch_id, Document.status == DocumentStatus.FAILED)
                .order_by(Document.id)
            )
        )
    wanted = sorted(set(document_ids))
    statuses: dict[int, str] = {}
    for chunk in _chunks(wanted):
        for document_id, status in connection.execute(
            select(Document.id, Document.status).where(
                Document.batch_id == batch_id, Document.id.in_(chunk)
            )
        ):
            statuses[document_id] = status
    missing = [document_id for document_id in wanted if document_id not in statuses]
    if missing:
        raise NotFoundError(f"batch {batch_id} has no document {', '.join(map(str, missing[:10]))}")
    not_failed = {i: s for i, s in statuses.items() if s != DocumentStatus.FAILED}
    if not_failed:
        shown = ", ".join(f"{i} ({s})" for i, s in sorted(not_failed.items())[:10])
        raise BatchStateError(
            f"only failed documents can be retried; in batch {batch_id} these have not "
            f"failed: {shown}"
        )
    return wanted


def _queue_again(
    connection: Connection,
    batch: ExtractionBatch,
    document_ids: list[int],
    prompt: str | None,
    extractor: str | None,
    now: datetime,
) -> list[Message]:
    """New job + queue item per document, documents back to pending; the messages to send."""
    last_jobs = (
        select(func.max(ExtractionJob.id))
        .where(ExtractionJob.batch_id == batch.id)
        .group_by(ExtractionJob.document_id)
    )
    previous: dict[int, tuple[str | None, str]] = {
        row.document_id: (row.prompt, row.extractor)
        for row in connection.execute(
            select(ExtractionJob.document_id, ExtractionJob.prompt, ExtractionJob.extractor).where(
                ExtractionJob.id.in_(last_jobs)
            )
        )
    }
    fallback = (None, batch.extractor)
    priority = items.batch_priority(connection, batch.id)
    messages = enqueue_document_jobs(
        connection,
        batch_id=batch.id,
        owner=batch.owner,
        jobs=[
            (
                document_id,
                prompt or previous.get(document_id, fallback)[0],
                extractor or previous.get(document_id, fallback)[1],
            )
            for document_id in document_ids
        ],
        priority=priority,
        now=now,
    )
    for chunk in _chunks(document_ids):
        connection.execute(
            update(Document)
            .where(Document.id.in_(chunk))
            .values(status=DocumentStatus.PENDING.value, error=None, updated_at=now)
        )
    return messages


def bulk_update_status(
    batch_ids: Sequence[int],
    status: str,
    *,
    actor: str | None = None,
    workspace: Workspace | None = None,
) -> int:
    """Set the status of several batches at once, all or none; returns how many changed.

    Only :data:`BULK_STATUSES` can be set: ``"cancelled"`` also stops the batches' open work
    (like :func:`cancel_batch`); ``"completed"`` and ``"failed"`` mark finished batches by
    hand (e.g. accepting a batch's failures), so they are refused for a batch that still
    has pending or processing documents. The other statuses follow from the documents:
    retry with :func:`retry_failed` instead.

    Raises
    ------
    ConfigurationError
        ``status`` is not one of :data:`BULK_STATUSES`.
    NotFoundError
        A batch does not exist.
    BatchnbError
        ``"completed"``/``"failed"`` for a batch with open documents.
    PermissionDeniedError
        ``actor`` may not change one of the batches (then none changes).
    """
    workspace, actor = acting(workspace, actor)
    if status not in BULK_STATUSES:
        raise ConfigurationError(
            f"cannot set batches to {status!r}; bulk_update_status sets one of "
            f"{', '.join(BULK_STATUSES)} (pending and processing follow from the documents: "
            "use retry_failed to run failed documents again)"
        )
    wanted = sorted(set(batch_ids))
    if not wanted:
        return 0
    authorize(workspace, actor, "update_status", wanted, {"status": status})
    now = utcnow()
    changed = 0
    with workspace.db.write() as session:
        batches: list[ExtractionBatch] = []
        for chunk in _chunks(wanted):
            batches.extend(
                session.scalars(select(ExtractionBatch).where(ExtractionBatch.id.in_(chunk)))
            )
        missing = sorted(set(wanted) - {batch.id for batch in batches})
        if missing:
            raise NotFoundError(f"batch {', '.join(map(str, missing))} does not exist")
        if status != BatchStatus.CANCELLED:
            _refuse_open(session, wanted, status)
        for batch in sorted(batches, key=lambda b: b.id):
            previous = batch.status
            stopped = _cancel_rows(session, batch, now) if status == BatchStatus.CANCELLED else 0
            if previous != status:
                batch.status = status
                batch.completed_at = now
                changed += 1
            record_event(
                session.connection(),
                actor,
                "update_status",
                "batch",
                batch.id,
                {"from": previous, "to": status, "items": stopped},
            )
    _invalidate(workspace)
    return changed


def _refuse_open(session: Session, batch_ids: list[int], status: str) -> None:
    open_counts: dict[int, int] = {}
    for chunk in _chunks(batch_ids):
        for batch_id, count in session.execute(
            select(Document.batch_id, func.count())
            .where(Document.batch_id.in_(chunk), Document.status.in_(OPEN_DOCUMENT_STATUSES))
            .group_by(Document.batch_id)
        ):
            open_counts[batch_id] = count
    if open_counts:
        shown = ", ".join(f"{b} ({n} open)" for b, n in sorted(open_counts.items())[:10])
        raise BatchStateError(
            f"cannot mark batches {status} while documents are pending or processing: "
            f"{shown}; cancel them or wait until they finish"
        )


def check_batches(
    batch_ids: Sequence[int],
    action: str,
    *,
    actor: str | None = None,
    workspace: Workspace | None = None,
) -> None:
    """Check, before an operation on several batches, that ``actor`` may do ``action`` to each.

    A bulk operation built from the one-batch functions (delete, cancel, retry) calls this
    first, so that a refusal for one batch leaves every batch as it was instead of stopping
    half-way. A refusal is audited once per batch not owned, like the functions' own checks.

    Raises
    ------
    NotFoundError
        A batch does not exist.
    PermissionDeniedError
        ``actor`` neither owns one of the batches nor is an admin.
    """
    workspace, actor = acting(workspace, actor)
    authorize(workspace, actor, action, batch_ids)
