"""The ``process_document`` job: parse one stored document, extract, store the result.

The queue runner calls these hooks; the ones taking a connection run inside the transaction that
also moves the queue item, so a document's row, its job row and its result always agree with
the queue.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update

from batchnb.db.engine import Database
from batchnb.db.models import Document, ExtractedData, ExtractionBatch, ExtractionJob, utcnow
from batchnb.db.statuses import BatchStatus, DocumentStatus
from batchnb.documents.storage import Storage
from batchnb.errors import SchemaError
from batchnb.extract import Extractor, Schema
from batchnb.extract.pipeline import extract_parsed, parse_for_route
from batchnb.extract.routing import Route
from batchnb.extract.validation import Rule, completeness_flags, parse_rules, validate
from batchnb.jobs.batch_status import close_if_settled
from batchnb.jobs.result_cache import cached_result, result_cache_key
from batchnb.queue import items
from batchnb.queue.items import LeasedItem
from batchnb.queue.messages import Message, Payload
from batchnb.queue.runtime import Checkpoint, Failure, JobHandler

log = logging.getLogger(__name__)

DOCUMENT_INFO_KEY = "_document"
"""Key in a result's evidence under which an "auto" run records the type it classified."""


@dataclass(frozen=True)
class ProcessDocument(Payload):
    """The payload of a ``process_document`` item: which document, run as which job."""

    job_type = "process_document"
    queue = "batch_processing"

    document_id: int
    job_id: int


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
    flags: list[dict[str, Any]]
    cache_key: str
    document_type: str
    """What "auto" classified the document as, else its file type (kept on the job)."""
    file_name: str


# Every hook below runs once per document, so its statements are built once (building and
# hashing a statement per call costs more than executing it).
# Changes the row only while the batch is pending, and skips it when another leaser is
# marking it at the same moment (PostgreSQL SKIP LOCKED): a worker frozen right after its
# lease must not make the others wait for the batch's row.
_MARK_BATCH_PROCESSING = (
    update(ExtractionBatch)
    .where(
        ExtractionBatch.id
        == select(ExtractionBatch.id)
        .where(
            ExtractionBatch.id == bindparam("batch"),
            ExtractionBatch.status == BatchStatus.PENDING.value,
        )
        .with_for_update(skip_locked=True, key_share=True)
        .scalar_subquery()
    )
    .values(status=BatchStatus.PROCESSING.value)
)
# The job learns which queue item runs it when the item is leased, which keeps submitting
# a batch to three bulk inserts.
_START_JOB = (
    update(ExtractionJob)
    .where(ExtractionJob.id == bindparam("job"))
    .values(
        status=DocumentStatus.PROCESSING.value,
        queue_item_id=bindparam("item"),
        started_at=bindparam("now"),
        updated_at=bindparam("now"),
    )
)
_SET_JOB = (
    update(ExtractionJob)
    .where(ExtractionJob.id == bindparam("job"))
    .values(
        status=bindparam("new_status"), error=bindparam("new_error"), updated_at=bindparam("now")
    )
)
_FINISH_JOB = _SET_JOB.values(
    finished_at=bindparam("now"),
    parser=bindparam("new_parser"),
    duration_ms=bindparam("new_duration"),
    document_type=bindparam("new_type"),
    error_kind=bindparam("new_kind"),
    error_traceback=bindparam("new_traceback"),
)
_SET_DOCUMENT = (
    update(Document)
    .where(Document.id == bindparam("document"))
    .values(
        status=bindparam("new_status"), error=bindparam("new_error"), updated_at=bindparam("now")
    )
)
_FINISH_DOCUMENT = _SET_DOCUMENT.values(
    page_count=bindparam("new_pages"), error_kind=bindparam("new_kind")
)
# Only the options a run needs are read: the whole JSON also holds the batch's refused files.
_JOB_INPUTS = (
    select(
        Document.storage_key,
        Document.file_type,
        Document.content_hash,
        ExtractionJob.extractor,
        func.coalesce(ExtractionJob.prompt, Document.prompt),
        ExtractionBatch.prompt,
        ExtractionBatch.strategy,
        ExtractionBatch.options["schema"],
        ExtractionBatch.options["templates"],
        ExtractionBatch.options["min_confidence"],
        ExtractionBatch.options["rules"],
        ExtractionBatch.options["result_cache"],
        Document.file_name,
    )
    .join(Document, Document.id == ExtractionJob.document_id)
    .join(ExtractionBatch, ExtractionBatch.id == ExtractionJob.batch_id)
    .where(ExtractionJob.id == bindparam("job"))
)
_INSERT_RESULT = insert(ExtractedData)
_FILE_NAME = select(Document.file_name).where(Document.id == bindparam("document"))


def _flags(
    data: Mapping[str, Any], schema: Schema, rules: list[dict[str, Any]] | None
) -> list[dict[str, Any]]:
    """Validation flags; an "auto" batch applies each rule where the schema has its fields."""
    applicable: list[Rule] = []
    for rule in rules or []:
        try:
            applicable.extend(parse_rules([rule], schema))
        except SchemaError:
            continue
    return [flag.to_dict() for flag in validate(data, schema, applicable)]


class DocumentJobHandler(JobHandler):
    """Parse, extract and store one document of a batch.

    Parameters
    ----------
    extractor_for:
        The workspace's extractor of a name (built once and reused; see
        :class:`batchnb.extract.ExtractorPool`).
    result_cache:
        Reuse stored results (``BATCHNB_RESULT_CACHE``); a batch submitted with the cache
        off extracts again whatever this says.
    """

    def __init__(
        self,
        db: Database,
        storage: Storage,
        extractor_for: Callable[[str], Extractor],
        *,
        result_cache: bool = True,
    ) -> None:
        self.db = db
        self.storage = storage
        self.extractor_for = extractor_for
        self.result_cache = result_cache

    @staticmethod
    def _close(
        connection: Connection,
        item: LeasedItem,
        status: DocumentStatus,
        failure: Failure | None,
        output: DocumentOutput | None = None,
    ) -> None:
        """Record a final status on the job and the document (the batch closes after the
        commit, in :meth:`settled`)."""
        DocumentJobHandler._close_all(connection, [(item, output)], status, failure)

    @staticmethod
    def _close_all(
        connection: Connection,
        closed: Sequence[tuple[LeasedItem, DocumentOutput | None]],
        status: DocumentStatus,
        failure: Failure | None,
    ) -> None:
        """Record one final status on the jobs and documents of ``closed``: two statements."""
        now = utcnow()
        common = {
            "new_status": status.value,
            "new_error": failure.message if failure else None,
            "new_kind": failure.kind if failure else None,
            "now": now,
        }
        jobs, documents = [], []
        for item, output in closed:
            payload = item.payload_as(ProcessDocument)
            jobs.append(
                {
                    **common,
                    "job": payload.job_id,
                    "new_parser": output.parser if output else None,
                    "new_duration": output.duration_ms if output else None,
                    "new_type": output.document_type if output else None,
                    "new_traceback": failure.traceback if failure else None,
                }
            )
            documents.append(
                {
                    **common,
                    "document": payload.document_id,
                    "new_pages": output.page_count if output else None,
                }
            )
        connection.execute(_FINISH_JOB, jobs)
        connection.execute(_FINISH_DOCUMENT, documents)

    def started(self, connection: Connection, leased: Sequence[LeasedItem]) -> None:
        now = utcnow()
        payloads = [item.payload_as(ProcessDocument) for item in leased]
        connection.execute(
            _START_JOB,
            [
                {"job": payload.job_id, "item": item.id, "now": now}
                for payload, item in zip(payloads, leased, strict=True)
            ],
        )
        connection.execute(
            _SET_DOCUMENT,
            [
                {
                    "document": payload.document_id,
                    "new_status": DocumentStatus.PROCESSING.value,
                    "new_error": None,
                    "now": now,
                }
                for payload in payloads
            ],
        )
        for batch_id in {item.batch_id for item in leased if item.batch_id is not None}:
            connection.execute(_MARK_BATCH_PROCESSING, {"batch": batch_id})

    def settled(self, closed: Sequence[LeasedItem]) -> None:
        close_if_settled(self.db, [item.batch_id for item in closed if item.batch_id is not None])

    def run(self, item: LeasedItem, checkpoint: Checkpoint) -> DocumentOutput:
        started = time.perf_counter()
        job_id = item.payload_as(ProcessDocument).job_id
        with self.db.connect() as connection:
            found = connection.execute(_JOB_INPUTS, {"job": job_id}).one_or_none()
            if found is None:
                raise LookupError(f"job {job_id} no longer exists")
            (
                storage_key,
                kind,
                content_hash,
                extractor_name,
                own_prompt,
                batch_prompt,
                strategy,
                stored_schema,
                templates,
                min_confidence,
                rules,
                batch_cache,
                file_name,
            ) = found
            extractor = self.extractor_for(extractor_name)
            route = Route.of(
                own_prompt, batch_prompt, strategy, stored_schema, templates, min_confidence
            )
            tables = route.wants_tables()
            cache_key = result_cache_key(
                content_hash, kind, extractor, {**route.cache_part(), "tables": tables}
            )
            # Absent unless the batch was submitted with the cache off; SQLite's JSON reads a
            # stored false back as 0.
            use_cache = self.result_cache and (batch_cache is None or bool(batch_cache))
            cached = cached_result(connection, cache_key) if use_cache else None
        if cached is not None:
            # The same bytes, parser, schema and extractor ran before: reuse, extract nothing.
            schema = Schema.from_dict(cached.schema)
            return DocumentOutput(
                data=cached.data,
                evidence=cached.evidence,
                schema=cached.schema,
                confidence=cached.confidence,
                page_count=cached.page_count or 0,
                parser=f"cached:{(cached.parser or '').removeprefix('cached:')}",
                duration_ms=(time.perf_counter() - started) * 1000,
                flags=_flags(cached.data, schema, rules)
                + [flag for flag in cached.flags if flag["rule"] == "incomplete"],
                cache_key=cache_key,
                document_type=(cached.evidence.get(DOCUMENT_INFO_KEY) or {}).get("type") or kind,
                file_name=file_name,
            )
        # Parsed from the stored stream: a PDF is read on demand, never held whole. The bytes
        # are checked against the hash taken at intake first: a file changed in storage fails
        # its document instead of "completing" with whatever it now holds.
        with self.storage.open_verified(storage_key, content_hash) as stream:
            checkpoint()
            parsed = parse_for_route(stream, kind, route)
        checkpoint()
        run = extract_parsed(parsed, route, extractor)
        schema, result, document_info = run.schema, run.result, run.document_info
        evidence: dict[str, Any] = result.evidence()
        if document_info is not None:
            evidence[DOCUMENT_INFO_KEY] = document_info
        values = result.data()
        return DocumentOutput(
            data=values,
            evidence=evidence,
            schema=schema.to_dict(),
            confidence=result.confidence(),
            page_count=parsed.page_count,
            parser=parsed.parser,
            duration_ms=(time.perf_counter() - started) * 1000,
            flags=_flags(values, schema, rules)
            + [flag.to_dict() for flag in completeness_flags(values, schema, parsed.pages)],
            cache_key=cache_key,
            document_type=document_info["type"] if document_info else kind,
            file_name=file_name,
        )

    def succeeded(
        self, connection: Connection, done: Sequence[tuple[LeasedItem, DocumentOutput]]
    ) -> None:
        now = utcnow()
        connection.execute(
            _INSERT_RESULT,
            [
                {
                    "job_id": item.payload_as(ProcessDocument).job_id,
                    "document_id": item.payload_as(ProcessDocument).document_id,
                    "batch_id": item.batch_id,
                    "data": output.data,
                    "evidence": output.evidence,
                    "schema": output.schema,
                    "confidence": output.confidence,
                    "flags": output.flags,
                    "cache_key": output.cache_key,
                    "created_at": now,
                }
                for item, output in done
            ],
        )
        self._close_all(connection, done, DocumentStatus.COMPLETED, None)
        for item, output in done:
            log.info(
                "batch %s: %s completed in %.2f s (%s, %s pages)",
                item.batch_id,
                output.file_name,
                output.duration_ms / 1000,
                output.parser,
                output.page_count,
            )

    def failed(self, connection: Connection, item: LeasedItem, failure: Failure) -> None:
        self._close(connection, item, DocumentStatus.FAILED, failure)
        log.info(
            "batch %s: %s failed (%s): %s",
            item.batch_id,
            _file_name(connection, item),
            failure.kind,
            failure.message,
        )

    def requeued(self, connection: Connection, item: LeasedItem, reason: str) -> None:
        # Back to waiting: the document shows no error; the job keeps why it was requeued.
        payload = item.payload_as(ProcessDocument)
        now = utcnow()
        pending = DocumentStatus.PENDING.value
        connection.execute(
            _SET_JOB,
            {"job": payload.job_id, "new_status": pending, "new_error": reason, "now": now},
        )
        connection.execute(
            _SET_DOCUMENT,
            {
                "document": payload.document_id,
                "new_status": pending,
                "new_error": None,
                "now": now,
            },
        )

    def cancelled(self, connection: Connection, item: LeasedItem) -> None:
        self._close(connection, item, DocumentStatus.CANCELLED, None)
        log.info("batch %s: %s cancelled", item.batch_id, _file_name(connection, item))


def _file_name(connection: Connection, item: LeasedItem) -> str:
    """The document's file name, for the log (a failure has no output that carries it)."""
    document = item.payload_as(ProcessDocument).document_id
    found = connection.execute(_FILE_NAME, {"document": document}).scalar()
    return str(found) if found is not None else f"document {document}"


def enqueue_document_jobs(
    connection: Connection,
    *,
    batch_id: int,
    owner: str,
    jobs: Sequence[tuple[int, str | None, str]],
    priority: int,
    now: datetime,
) -> list[Message]:
    """Insert a pending job and its queue item per (document id, prompt, extractor).

    Used by submitting and by retrying; returns the messages to dispatch after the commit.
    """
    job_ids = connection.scalars(
        insert(ExtractionJob).returning(ExtractionJob.id, sort_by_parameter_order=True),
        [
            {
                "batch_id": batch_id,
                "document_id": document_id,
                "owner": owner,
                "status": DocumentStatus.PENDING.value,
                "prompt": prompt,
                "extractor": extractor,
                "created_at": now,
                "updated_at": now,
            }
            for document_id, prompt, extractor in jobs
        ],
    ).all()
    payloads = [
        ProcessDocument(document_id=document_id, job_id=job_id)
        for (document_id, _, _), job_id in zip(jobs, job_ids, strict=True)
    ]
    return items.enqueue(
        connection, payloads, owner=owner, now=now, batch_id=batch_id, priority=priority
    )
