"""The ``process_document`` job: parse one stored document, extract, store the result.

The queue runner calls these hooks; the ones taking a connection run inside the transaction that
also moves the queue item, so a document's row, its job row and its result always agree with
the queue.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update

from batchnb.db.engine import Database
from batchnb.db.models import (
    BatchStatus,
    Document,
    DocumentStatus,
    ExtractedData,
    ExtractionBatch,
    ExtractionJob,
    QueueItem,
    utcnow,
)
from batchnb.documents.parsed import ParsedDocument
from batchnb.documents.parsers import PARSER_VERSION, parse_document
from batchnb.documents.storage import Storage
from batchnb.errors import SchemaError
from batchnb.extract import (
    Extractor,
    Schema,
    get_extractor,
    schema_from_dict,
    schema_from_prompt,
)
from batchnb.extract.classify import classify
from batchnb.extract.templates import FALLBACK, builtin_templates, template_prompt
from batchnb.extract.validation import Rule, completeness_flags, parse_rules, validate
from batchnb.queue.items import LeasedItem, new_item_values
from batchnb.queue.runner import Checkpoint, JobHandler

PROCESS_DOCUMENT = "process_document"
BATCH_QUEUE = "batch_processing"
DOCUMENT_INFO_KEY = "_document"
"""Key in a result's evidence under which an "auto" run records the type it classified."""
DEFAULT_MIN_CONFIDENCE = 0.5
"""Below this classification confidence an "auto" run uses the fallback template."""


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


# Every hook below runs once per document, so its statements are built once (building and
# hashing a statement per call costs more than executing it).
_OPEN_STATUSES = (DocumentStatus.PENDING.value, DocumentStatus.PROCESSING.value)
_ANY_OPEN_DOCUMENT = (
    select(Document.id)
    .where(Document.batch_id == bindparam("batch"), Document.status.in_(_OPEN_STATUSES))
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
# (SQLite writes one transaction at a time already and compiles no FOR UPDATE.)
_LOCK_BATCH = (
    select(ExtractionBatch.id)
    .where(ExtractionBatch.id == bindparam("batch"))
    .with_for_update(key_share=True)
)
_MARK_BATCH_PROCESSING = (
    update(ExtractionBatch)
    .where(
        ExtractionBatch.id == bindparam("batch"),
        ExtractionBatch.status == BatchStatus.PENDING.value,
    )
    .values(status=BatchStatus.PROCESSING.value)
)
_CLOSE_BATCH = (
    update(ExtractionBatch)
    .where(
        ExtractionBatch.id == bindparam("batch"),
        ExtractionBatch.status != BatchStatus.CANCELLED.value,
    )
    .values(status=bindparam("new_status"), completed_at=bindparam("now"))
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
)
_SET_DOCUMENT = (
    update(Document)
    .where(Document.id == bindparam("document"))
    .values(
        status=bindparam("new_status"), error=bindparam("new_error"), updated_at=bindparam("now")
    )
)
_FINISH_DOCUMENT = _SET_DOCUMENT.values(page_count=bindparam("new_pages"))
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
    )
    .join(Document, Document.id == ExtractionJob.document_id)
    .join(ExtractionBatch, ExtractionBatch.id == ExtractionJob.batch_id)
    .where(ExtractionJob.id == bindparam("job"))
)
_INSERT_RESULT = insert(ExtractedData)
_CACHED_RESULT = (
    select(
        ExtractedData.data,
        ExtractedData.evidence,
        ExtractedData.schema,
        ExtractedData.confidence,
        ExtractedData.flags,
        Document.page_count,
        ExtractionJob.parser,
    )
    .join(Document, Document.id == ExtractedData.document_id)
    .join(ExtractionJob, ExtractionJob.id == ExtractedData.job_id)
    .where(ExtractedData.cache_key == bindparam("key"))
    .limit(1)
)


def result_cache_key(
    content_hash: str,
    kind: str,
    extractor: Extractor,
    route: Mapping[str, Any],
) -> str:
    """What makes two extractions the same: bytes, parser, schema or routing, extractor.

    ``route`` is what decides the schema: the schema's own hash when it is known before
    parsing, or the "auto" strategy's templates and threshold (the type is found after).
    """
    canonical = json.dumps(
        {
            "content": content_hash,
            "parser": PARSER_VERSION.get(kind, kind),
            "route": route,
            "extractor": [extractor.name, extractor.version],
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


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


@dataclass(frozen=True)
class Route:
    """How one document's schema is chosen: known before parsing, or by classifying it.

    A prompt of the job (a retry with a new prompt) or of the document comes first; then an
    "auto" batch classifies the document and takes its type's template (the batch's stored
    templates, else the built-in ones), or the fallback when the classifier is not sure; then
    the batch's schema, then its prompt.
    """

    schema: Schema | None
    templates: dict[str, str]
    min_confidence: float

    @classmethod
    def of(
        cls,
        own_prompt: str | None,
        batch_prompt: str | None,
        strategy: str,
        stored_schema: dict[str, Any] | None,
        templates: dict[str, str] | None,
        min_confidence: float | None,
    ) -> Route:
        threshold = DEFAULT_MIN_CONFIDENCE if min_confidence is None else float(min_confidence)
        if own_prompt:
            schema: Schema | None = schema_from_prompt(own_prompt)
        elif strategy == "auto":
            schema = None
        elif stored_schema:
            schema = schema_from_dict(stored_schema)
        else:
            schema = schema_from_prompt(batch_prompt or "")
        return cls(schema, templates or builtin_templates(), threshold)

    def cache_part(self) -> dict[str, Any]:
        """What of the route belongs in the result cache key."""
        if self.schema is not None:
            return {"schema": self.schema.hash()}
        return {"auto": self.templates, "min_confidence": self.min_confidence}

    def wants_tables(self) -> bool:
        """Whether the schema can have array fields: PDF tables cost ~0.1 s a page, so they
        are read only then ("auto" decides after parsing, so any template with arrays counts).
        """
        schemas = (
            [self.schema]
            if self.schema is not None
            else [schema_from_prompt(prompt) for prompt in self.templates.values()]
        )
        return any(field.type == "array" for schema in schemas for field in schema.fields)

    def choose(self, parsed: ParsedDocument) -> tuple[Schema, dict[str, Any] | None]:
        """The schema for this document, and for "auto" what the classifier said."""
        if self.schema is not None:
            return self.schema, None
        found = classify(parsed)
        low = found.confidence < self.min_confidence
        prompt = template_prompt(self.templates, FALLBACK if low else found.type)
        info = {
            "type": found.type,
            "confidence": found.confidence,
            "low_confidence": low,
            "prompt": prompt,
        }
        return schema_from_prompt(prompt), info


def refresh_batch_status(connection: Connection, batch_id: int) -> None:
    """Derive a batch's status from its documents (a cancelled batch stays cancelled).

    While any document is open nothing changes (the lease marked the batch processing); that
    is one indexed lookup, so
    finishing each document of a large batch stays cheap. The full count runs once, when the
    last document closes.
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
        connection: Connection,
        item: LeasedItem,
        status: DocumentStatus,
        error: str | None,
        output: DocumentOutput | None = None,
    ) -> None:
        """Record a final status on the job and the document, then on the batch."""
        now = utcnow()
        common = {"new_status": status.value, "new_error": error, "now": now}
        connection.execute(
            _FINISH_JOB,
            {
                **common,
                "job": item.payload["job_id"],
                "new_parser": output.parser if output else None,
                "new_duration": output.duration_ms if output else None,
                "new_type": output.document_type if output else None,
            },
        )
        connection.execute(
            _FINISH_DOCUMENT,
            {
                **common,
                "document": item.payload["document_id"],
                "new_pages": output.page_count if output else None,
            },
        )
        if item.batch_id is not None:
            refresh_batch_status(connection, item.batch_id)

    def started(self, connection: Connection, item: LeasedItem) -> None:
        now = utcnow()
        connection.execute(_START_JOB, {"job": item.payload["job_id"], "item": item.id, "now": now})
        connection.execute(
            _SET_DOCUMENT,
            {
                "document": item.payload["document_id"],
                "new_status": DocumentStatus.PROCESSING.value,
                "new_error": None,
                "now": now,
            },
        )
        if item.batch_id is not None:
            connection.execute(_MARK_BATCH_PROCESSING, {"batch": item.batch_id})

    def run(self, item: LeasedItem, checkpoint: Checkpoint) -> DocumentOutput:
        started = time.perf_counter()
        with self.db.connect() as connection:
            found = connection.execute(_JOB_INPUTS, {"job": item.payload["job_id"]}).one_or_none()
            if found is None:
                raise LookupError(f"job {item.payload['job_id']} no longer exists")
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
            ) = found
            extractor = get_extractor(extractor_name)
            route = Route.of(
                own_prompt, batch_prompt, strategy, stored_schema, templates, min_confidence
            )
            tables = route.wants_tables()
            cache_key = result_cache_key(
                content_hash, kind, extractor, {**route.cache_part(), "tables": tables}
            )
            cached = connection.execute(_CACHED_RESULT, {"key": cache_key}).one_or_none()
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
            )
        data = self.storage.read(storage_key)
        checkpoint()
        parsed = parse_document(data, kind, tables=tables)
        checkpoint()
        schema, document_info = route.choose(parsed)
        result = extractor.extract(parsed, schema)
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
        )

    def succeeded(self, connection: Connection, item: LeasedItem, output: DocumentOutput) -> None:
        connection.execute(
            _INSERT_RESULT,
            {
                "job_id": item.payload["job_id"],
                "document_id": item.payload["document_id"],
                "batch_id": item.batch_id,
                "data": output.data,
                "evidence": output.evidence,
                "schema": output.schema,
                "confidence": output.confidence,
                "flags": output.flags,
                "cache_key": output.cache_key,
                "created_at": utcnow(),
            },
        )
        self._close(connection, item, DocumentStatus.COMPLETED, None, output)

    def failed(self, connection: Connection, item: LeasedItem, error: str) -> None:
        self._close(connection, item, DocumentStatus.FAILED, error)

    def requeued(self, connection: Connection, item: LeasedItem, reason: str) -> None:
        # Back to waiting: the document shows no error; the job keeps why it was requeued.
        now = utcnow()
        pending = DocumentStatus.PENDING.value
        connection.execute(
            _SET_JOB,
            {"job": item.payload["job_id"], "new_status": pending, "new_error": reason, "now": now},
        )
        connection.execute(
            _SET_DOCUMENT,
            {
                "document": item.payload["document_id"],
                "new_status": pending,
                "new_error": None,
                "now": now,
            },
        )

    def cancelled(self, connection: Connection, item: LeasedItem) -> None:
        self._close(connection, item, DocumentStatus.CANCELLED, None)


def enqueue_document_jobs(
    connection: Connection,
    *,
    batch_id: int,
    owner: str,
    jobs: Sequence[tuple[int, str | None, str]],
    priority: int,
    now: datetime,
) -> list[tuple[int, int, datetime | None]]:
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
    item_ids = connection.scalars(
        insert(QueueItem).returning(QueueItem.id, sort_by_parameter_order=True),
        [
            new_item_values(
                BATCH_QUEUE,
                PROCESS_DOCUMENT,
                {"document_id": document_id, "job_id": job_id},
                owner=owner,
                now=now,
                batch_id=batch_id,
                priority=priority,
            )
            for (document_id, _, _), job_id in zip(jobs, job_ids, strict=True)
        ],
    ).all()
    return [(item_id, priority, None) for item_id in item_ids]


def job_handlers(db: Database, storage: Storage) -> dict[str, JobHandler]:
    """The job types a workspace's workers run."""
    return {PROCESS_DOCUMENT: DocumentJobHandler(db, storage)}
