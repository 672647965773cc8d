"""Running an export: read the chosen documents' results from the database, page by page, and
stream them through :func:`batchnb.formats.write`; the ``export`` job of the exports queue.

Reading is keyset-paginated (``documents.id > last``), one short read per page of
:data:`PAGE_SIZE` documents, so an export of any size holds one page at a time and never keeps a
transaction open while the file is written. Every ``exports`` row carries what was asked
(selection, format, mode, options) and where it got to (``documents_done``), so the same code runs
an export inline or on a worker, and a worker that dies mid-export simply starts it again.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Text,
    bindparam,
    cast,
    func,
    or_,
    select,
    update,
)

from batchnb.db.engine import Database
from batchnb.db.models import Document, DocumentStatus, Export, ExtractedData, utcnow
from batchnb.errors import ExportError
from batchnb.formats import ExportRecord, ExportSummary, write
from batchnb.queue.items import LeasedItem
from batchnb.queue.runner import Checkpoint, JobHandler
from batchnb.services.processing import DOCUMENT_INFO_KEY

log = logging.getLogger(__name__)

EXPORT_JOB = "export"
EXPORT_QUEUE = "exports"
PAGE_SIZE = 1000
"""Documents read from the database per query (and rows handed to a writer per chunk)."""
PROGRESS_INTERVAL_SECONDS = 1.0
MAX_DOCUMENT_IDS = 10_000
"""Most documents a selection may name one by one; larger selections go by batch."""


class ExportStatus:
    """Values of ``exports.status``."""

    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


@dataclass(frozen=True)
class Selection:
    """Which documents an export takes: every document of ``batch_ids`` plus ``document_ids``."""

    batch_ids: tuple[int, ...] = ()
    document_ids: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.batch_ids and not self.document_ids:
            raise ExportError("nothing selected: give a batch id, a list of them, or document ids")
        if len(self.document_ids) > MAX_DOCUMENT_IDS:
            raise ExportError(
                f"{len(self.document_ids)} documents named one by one; at most "
                f"{MAX_DOCUMENT_IDS} can be, select whole batches instead"
            )

    def as_dict(self) -> dict[str, list[int]]:
        """The JSON form stored in ``exports.selection``."""
        return {"batch_ids": list(self.batch_ids), "document_ids": list(self.document_ids)}

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> Selection:
        return cls(
            tuple(int(i) for i in value.get("batch_ids", ())),
            tuple(int(i) for i in value.get("document_ids", ())),
        )

    def condition(self) -> ColumnElement[bool]:
        """The ``documents`` rows selected."""
        parts: list[ColumnElement[bool]] = []
        if self.batch_ids:
            parts.append(Document.batch_id.in_(self.batch_ids))
        if self.document_ids:
            parts.append(Document.id.in_(self.document_ids))
        return or_(*parts) if len(parts) > 1 else parts[0]


def exported_statuses(include_failed: bool) -> tuple[str, ...]:
    """Documents with a result are exported; failed and cancelled ones only when asked.

    Documents still waiting or running are never exported: their values do not exist yet.
    """
    if include_failed:
        return (
            DocumentStatus.COMPLETED.value,
            DocumentStatus.FAILED.value,
            DocumentStatus.CANCELLED.value,
        )
    return (DocumentStatus.COMPLETED.value,)


def count_documents(connection: Connection, selection: Selection, include_failed: bool) -> int:
    """How many documents the export will take."""
    return int(
        connection.scalar(
            select(func.count())
            .select_from(Document)
            .where(selection.condition(), Document.status.in_(exported_statuses(include_failed)))
        )
        or 0
    )


def selected_batch_ids(connection: Connection, selection: Selection) -> list[int]:
    """Every batch the selection touches (for the ownership check)."""
    found = set(selection.batch_ids)
    if selection.document_ids:
        rows = connection.execute(
            select(Document.id, Document.batch_id).where(Document.id.in_(selection.document_ids))
        ).all()
        missing = set(selection.document_ids) - {row.id for row in rows}
        if missing:
            shown = ", ".join(map(str, sorted(missing)[:5]))
            raise ExportError(f"document {shown} does not exist")
        found.update(row.batch_id for row in rows)
    return sorted(found)


def combined_schema(connection: Connection, selection: Selection) -> dict[str, Any]:
    """One schema covering every result of the selection, fields in order of first appearance.

    Batches with a prompt per document or "auto" types hold several schemas: the export's
    columns are their union. A field with the same name but different types in two schemas
    becomes a text column (values written as stored); arrays with the same name merge their
    item fields the same way.
    """
    schemas = connection.execute(
        select(ExtractedData.schema, func.min(ExtractedData.id).label("first"))
        .join(Document, Document.id == ExtractedData.document_id)
        .where(selection.condition())
        .group_by(ExtractedData.schema)
        .order_by("first")
    ).scalars()
    fields: list[dict[str, Any]] = []
    for schema in schemas:
        fields = merge_fields(fields, (schema or {}).get("fields", ()))
    return {"fields": fields}


def merge_fields(
    known: Sequence[Mapping[str, Any]], extra: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """``known`` followed by the fields of ``extra`` it lacks; clashing types become text."""
    merged = {str(spec["name"]): dict(spec) for spec in known}
    for spec in extra:
        name = str(spec["name"])
        current = merged.get(name)
        if current is None:
            merged[name] = dict(spec)
        elif current.get("type") == "array" and spec.get("type") == "array":
            current["fields"] = merge_fields(current.get("fields", ()), spec.get("fields", ()))
        elif current.get("type", "string") != spec.get("type", "string"):
            merged[name] = {**current, "type": "string"}
            merged[name].pop("fields", None)
    return list(merged.values())


# The JSON columns are read as their text and decoded only when their record is consumed: a
# page of decoded results kept alive while it is written cost the cyclic garbage collector
# about as much as the decoding itself (it scans every surviving container, again and again).
_RESULT_COLUMNS = (
    ExtractedData.document_id,
    cast(ExtractedData.data, Text).label("data"),
    ExtractedData.confidence,
)
_PAGE_IDS = ExtractedData.document_id.in_(bindparam("ids", expanding=True))
_PAGE_RESULTS = select(*_RESULT_COLUMNS).where(_PAGE_IDS).order_by(ExtractedData.id)
_PAGE_RESULTS_WITH_EVIDENCE = (
    select(*_RESULT_COLUMNS, cast(ExtractedData.evidence, Text).label("evidence"))
    .where(_PAGE_IDS)
    .order_by(ExtractedData.id)
)


def iter_export_records(
    db: Database,
    selection: Selection,
    include_failed: bool,
    *,
    with_evidence: bool = False,
    page_size: int = PAGE_SIZE,
) -> Iterator[ExportRecord]:
    """The selected documents in id order, each with its newest result, one page at a time.

    Records carry no schema: the export's columns come from :func:`combined_schema`, which
    covers every result of the selection. Evidence is read only when ``with_evidence``.
    """
    documents = (
        select(Document.id, Document.file_name, Document.batch_id, Document.status, Document.error)
        .where(
            selection.condition(),
            Document.status.in_(exported_statuses(include_failed)),
            Document.id > bindparam("last"),
        )
        .order_by(Document.id)
        .limit(page_size)
    )
    results_query = _PAGE_RESULTS_WITH_EVIDENCE if with_evidence else _PAGE_RESULTS
    last = 0
    while True:
        with db.connect() as connection:
            page = connection.execute(documents, {"last": last}).all()
            if not page:
                return
            results = {
                row.document_id: row  # ordered by id: the newest result of a document wins
                for row in connection.execute(results_query, {"ids": [d.id for d in page]})
            }
        for document in page:
            result = results.get(document.id)
            evidence: dict[str, Any] = {}
            if with_evidence and result is not None:
                evidence = json.loads(result.evidence) or {}
                evidence.pop(DOCUMENT_INFO_KEY, None)
            yield ExportRecord(
                document_id=document.id,
                file_name=document.file_name,
                batch_id=document.batch_id,
                status=document.status,
                error=document.error,
                data=json.loads(result.data) if result is not None else {},
                confidence=result.confidence if result is not None else None,
                evidence=evidence,
            )
        last = page[-1].id


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

    def started(self, connection: Connection, item: LeasedItem) -> None:
        mark_started(connection, item.payload["export_id"])

    def run(self, item: LeasedItem, checkpoint: Checkpoint) -> ExportOutcome:
        export_id = item.payload["export_id"]
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

    def succeeded(self, connection: Connection, item: LeasedItem, output: ExportOutcome) -> None:
        mark_finished(connection, item.payload["export_id"], output, self.retention)

    def failed(self, connection: Connection, item: LeasedItem, error: str) -> None:
        mark_failed(connection, item.payload["export_id"], error)

    def requeued(self, connection: Connection, item: LeasedItem, reason: str) -> None:
        connection.execute(
            _SET_STATUS,
            {
                "export": item.payload["export_id"],
                "new_status": ExportStatus.PENDING,
                "now": utcnow(),
            },
        )

    def cancelled(self, connection: Connection, item: LeasedItem) -> None:
        connection.execute(
            _SET_STATUS,
            {
                "export": item.payload["export_id"],
                "new_status": ExportStatus.CANCELLED,
                "now": utcnow(),
            },
        )


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
