"""The ``export`` job: write the file an ``exports`` row asks for, with progress on the row.

Every ``exports`` row carries what was asked (selection, format, mode, options) and where it got
to (``documents_done``), so the same code runs an export inline (the service does) or on a
worker (the ``exports`` queue), and a worker that dies mid-export simply starts it again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from batchnb.db.engine import Database
from batchnb.db.models import Export, utcnow
from batchnb.db.statuses import ExportStatus
from batchnb.errors import ExportError
from batchnb.formats import ExportRecord, ExportSummary, write
from batchnb.jobs.export_records import (
    PAGE_SIZE,
    Selection,
    combined_schema,
    iter_export_records,
)
from batchnb.queue.items import LeasedItem
from batchnb.queue.messages import Payload
from batchnb.queue.runtime import Checkpoint, Failure, JobHandler

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_SECONDS = 1.0


@dataclass(frozen=True)
class WriteExport(Payload):
    """The payload of an ``export`` item: which ``exports`` row to write."""

    job_type = "export"
    queue = "exports"

    export_id: int


ProgressCallback = Callable[[int], None]


@dataclass(frozen=True)
class ExportOutcome:
    """What a finished export wrote: rows and bytes, and how many documents they came from."""

    summary: ExportSummary
    documents: int


class _Counter:
    """Passes records through, reporting how many went by after every ``every`` of them."""

    def __init__(self, every: int, report: ProgressCallback) -> None:
        self.every = every
        self.report = report
        self.done = 0

    def count(self, records: Iterator[ExportRecord]) -> Iterator[ExportRecord]:
        for record in records:
            yield record
            self.done += 1
            if self.done % self.every == 0:
                self.report(self.done)


def run_export(
    db: Database,
    export_id: int,
    on_progress: ProgressCallback,
    schema: Mapping[str, Any] | None = None,
) -> ExportOutcome:
    """Write the file an ``exports`` row asks for; ``on_progress(documents_done)`` per page.

    ``schema`` is the selection's :func:`combined_schema` when the caller has just computed it
    (an inline export); a queued export computes it when it runs, as documents may have
    finished since it was asked for.
    """
    with db.read() as session:
        row = session.get(Export, export_id)
        if row is None:
            raise LookupError(f"export {export_id} no longer exists")
        selection = Selection.from_dict(row.selection)
        options = dict(row.options)
        fmt, mode, location = row.format, row.mode, row.location
    if location is None:
        raise ExportError(f"export {export_id} has no file location")
    if schema is None:
        with db.connect() as connection:
            schema = combined_schema(connection, selection)
    include_failed = bool(options.get("include_failed", False))
    include_confidence = bool(options.get("include_confidence", False))
    counter = _Counter(PAGE_SIZE, on_progress)
    target = Path(location)
    target.parent.mkdir(parents=True, exist_ok=True)
    summary = write(
        counter.count(
            iter_export_records(db, selection, include_failed, with_evidence=include_confidence)
        ),
        fmt,
        target,
        mode=mode,  # type: ignore[arg-type]
        array_field=options.get("array_field"),
        include_failed=include_failed,
        include_confidence=include_confidence,
        chunk_size=PAGE_SIZE,
        schema=schema,
    )
    return ExportOutcome(summary, counter.done)


_SET_STATUS = (
    update(Export)
    .where(Export.id == bindparam("export"))
    .values(status=bindparam("new_status"), updated_at=bindparam("now"))
)
_SET_PROGRESS = (
    update(Export)
    .where(Export.id == bindparam("export"))
    .values(documents_done=bindparam("done"), updated_at=bindparam("now"))
)


def mark_started(connection: Connection, export_id: int) -> None:
    """The export is being written (progress starts again from zero)."""
    connection.execute(
        update(Export)
        .where(Export.id == export_id)
        .values(status=ExportStatus.PROCESSING, documents_done=0, error=None, updated_at=utcnow())
    )


def mark_finished(
    connection: Connection,
    export_id: int,
    outcome: ExportOutcome,
    retention: timedelta,
) -> None:
    """Record the written file; a managed file expires ``retention`` from now."""
    now = utcnow()
    managed = connection.scalar(select(Export.managed).where(Export.id == export_id))
    connection.execute(
        update(Export)
        .where(Export.id == export_id)
        .values(
            status=ExportStatus.COMPLETED,
            row_count=outcome.summary.rows,
            size_bytes=outcome.summary.bytes,
            documents_done=outcome.documents,
            error=None,
            updated_at=now,
            expires_at=now + retention if managed else None,
        )
    )


def mark_failed(connection: Connection, export_id: int, error: str) -> None:
    """Record why the export failed (no file was left under its name)."""
    connection.execute(
        update(Export)
        .where(Export.id == export_id)
        .values(status=ExportStatus.FAILED, error=error, updated_at=utcnow())
    )


class ExportJobHandler(JobHandler):
    """The ``export`` job: write one export's file on a worker, with progress on its row."""

    def __init__(self, db: Database, retention: timedelta) -> None:
        self.db = db
        self.retention = retention

    def started(self, connection: Connection, leased: Sequence[LeasedItem]) -> None:
        for item in leased:
            mark_started(connection, item.payload_as(WriteExport).export_id)

    def run(self, item: LeasedItem, checkpoint: Checkpoint) -> ExportOutcome:
        export_id = item.payload_as(WriteExport).export_id
        last_report = 0.0

        def report(done: int) -> None:
            nonlocal last_report
            checkpoint()  # stops at a cancel or a worker shutdown; the .part file is removed
            if time.monotonic() - last_report >= PROGRESS_INTERVAL_SECONDS:
                last_report = time.monotonic()
                with self.db.begin() as connection:
                    connection.execute(
                        _SET_PROGRESS, {"export": export_id, "done": done, "now": utcnow()}
                    )

        return run_export(self.db, export_id, report)

    def succeeded(
        self, connection: Connection, done: Sequence[tuple[LeasedItem, ExportOutcome]]
    ) -> None:
        for item, output in done:
            export_id = item.payload_as(WriteExport).export_id
            mark_finished(connection, export_id, output, self.retention)

    def failed(self, connection: Connection, item: LeasedItem, failure: Failure) -> None:
        mark_failed(connection, item.payload_as(WriteExport).export_id, failure.message)

    def requeued(self, connection: Connection, item: LeasedItem, reason: str) -> None:
        connection.execute(
            _SET_STATUS,
            {
                "export": item.payload_as(WriteExport).export_id,
                "new_status": ExportStatus.PENDING,
                "now": utcnow(),
            },
        )

    def cancelled(self, connection: Connection, item: LeasedItem) -> None:
        connection.execute(
            _SET_STATUS,
            {
                "export": item.payload_as(WriteExport).export_id,
                "new_status": ExportStatus.CANCELLED,
                "now": utcnow(),
            },
        )

    def settled(self, closed: Sequence[LeasedItem]) -> None:
        return None  # an export's row is final once its outcome is written


def remove_expired_exports(db: Database, now: datetime | None = None) -> int:
    """Delete the files of managed exports past ``expires_at``; their rows say ``expired``.

    Returns how many files were removed. A file already gone counts as removed; a file that
    cannot be removed is logged and tried again next time.
    """
    now = now or utcnow()
    with db.connect() as connection:
        expired = connection.execute(
            select(Export.id, Export.location).where(
                Export.managed.is_(True),
                Export.status == ExportStatus.COMPLETED,
                Export.expires_at < now,
            )
        ).all()
    removed: list[int] = []
    for export_id, location in expired:
        try:
            if location:
                Path(location).unlink(missing_ok=True)
        except OSError as exc:
            log.warning("cannot remove expired export %s at %s: %s", export_id, location, exc)
            continue
        removed.append(export_id)
    if removed:
        with db.begin() as connection:
            connection.execute(
                update(Export)
                .where(Export.id.in_(removed))
                .values(status=ExportStatus.EXPIRED, location=None, updated_at=now)
            )
    return len(removed)
