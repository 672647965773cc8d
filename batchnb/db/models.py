"""SQLAlchemy 2.0 models: the schema of batchnb.

Every change here needs a migration under ``batchnb/db/migrations/versions``; a test proves the
models and the migrations agree. PostgreSQL-only indexes (GIN on JSON, trigram on file names) are
marked with ``ddl_if(dialect="postgresql")`` so SQLite never sees them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from batchnb.db.base import NAMING_CONVENTION as NAMING_CONVENTION
from batchnb.db.base import Base as Base
from batchnb.db.base import JSONType as JSONType
from batchnb.db.base import UTCDateTime as UTCDateTime
from batchnb.db.base import utcnow as utcnow

# The maintenance locks (migration 0009), likewise in their own module.
from batchnb.db.maintenance_models import MaintenanceLock as MaintenanceLock

# The schedules' tables (migration 0008) live in their own module; importing them here puts
# them in Base.metadata wherever the models are loaded (Alembic's autogenerate included).
from batchnb.db.schedule_models import Schedule as Schedule
from batchnb.db.schedule_models import ScheduleRun as ScheduleRun

_active_sql = "status IN ('pending', 'processing', 'retrying')"
_ready_sql = "status IN ('pending', 'retrying')"
_failed_sql = "status = 'failed'"
_completed_sql = "status = 'completed'"


def _status(length: int = 24) -> Mapped[str]:
    return mapped_column(String(length), nullable=False)


class ExtractionBatch(Base):
    __tablename__ = "extraction_batches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    owner: Mapped[str] = mapped_column(String(255), nullable=False)
    status: Mapped[str] = _status()
    strategy: Mapped[str] = mapped_column(String(32), nullable=False, default="global")
    prompt: Mapped[str | None] = mapped_column(Text)
    extractor: Mapped[str] = mapped_column(String(64), nullable=False, default="offline")
    plan: Mapped[str] = mapped_column(String(32), nullable=False, default="local")
    options: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False, default=dict)
    document_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, nullable=False, default=utcnow, onupdate=utcnow
    )
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    documents: Mapped[list[Document]] = relationship(back_populates="batch")

    __table_args__ = (
        Index("ix_extraction_batches_owner_created_at", "owner", "created_at"),
        Index("ix_extraction_batches_status_updated_at", "status", "updated_at"),
        Index(
            "ix_extraction_batches_name_trgm",
            "name",
            postgresql_using="gin",
            postgresql_ops={"name": "gin_trgm_ops"},
        ).ddl_if(dialect="postgresql"),
        # SQLite would otherwise reuse a deleted batch's id (migration 0004).
        {"sqlite_autoincrement": True},
    )


class Document(Base):
    __tablename__ = "documents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(
        ForeignKey("extraction_batches.id", ondelete="CASCADE"), nullable=False
    )
    owner: Mapped[str] = mapped_column(String(255), nullable=False)
    file_name: Mapped[str] = mapped_column(String(255), nullable=False)
    source: Mapped[str | None] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    storage_key: Mapped[str] = mapped_column(String(255), nullable=False)
    size_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    file_type: Mapped[str] = mapped_column(String(32), nullable=False)
    mime_type: Mapped[str] = mapped_column(String(128), nullable=False)
    prompt: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = _status()
    error: Mapped[str | None] = mapped_column(Text)
    # What kind of failure (batchnb.errors: the error's own kind, else its class name).
    error_kind: Mapped[str | None] = mapped_column(String(64))
    page_count: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, nullable=False, default=utcnow, onupdate=utcnow
    )
    # Someone checked the document's values (migration 0007); cleared when unmarked.
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reviewed_by: Mapped[str | None] = mapped_column(String(255))

    batch: Mapped[ExtractionBatch] = relationship(back_populates="documents")

    __table_args__ = (
        Index("ix_documents_batch_id_status", "batch_id", "status"),
        Index("ix_documents_content_hash", "content_hash"),
        Index("ix_documents_owner_created_at", "owner", "created_at"),
        Index(
            "ix_documents_failed",
            "batch_id",
            sqlite_where=text(_failed_sql),
            postgresql_where=text(_failed_sql),
        ),
        Index(
            "ix_documents_file_name_trgm",
            "file_name",
            postgresql_using="gin",
            postgresql_ops={"file_name": "gin_trgm_ops"},
        ).ddl_if(dialect="postgresql"),
        {"sqlite_autoincrement": True},
    )


class ExtractionJob(Base):
    """One run of extraction over one document (a retry with a new prompt is a new job)."""

    __tablename__ = "extraction_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(
        ForeignKey("extraction_batches.id", ondelete="CASCADE"), nullable=False
    )
    document_id: Mapped[int] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), nullable=False
    )
    queue_item_id: Mapped[int | None] = mapped_column(
        ForeignKey("queue_items.id", ondelete="SET NULL")
    )
    owner: Mapped[str] = mapped_column(String(255), nullable=False)
    status: Mapped[str] = _status()
    prompt: Mapped[str | None] = mapped_column(Text)
    extractor: Mapped[str] = mapped_column(String(64), nullable=False)
    parser: Mapped[str | None] = mapped_column(String(64))
    # What a completed run found the document to be: the type an "auto" run classified, else
    # the file type. Stored so that analytics group by it without reading the results.
    document_type: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    error_kind: Mapped[str | None] = mapped_column(String(64))
    # The innermost frames of a failure's traceback, so users can see where it went wrong.
    error_traceback: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    duration_ms: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, nullable=False, default=utcnow, onupdate=utcnow
    )

    __table_args__ = (
        Index("ix_extraction_jobs_batch_id_status", "batch_id", "status"),
        Index("ix_extraction_jobs_document_id", "document_id"),
        Index("ix_extraction_jobs_status_updated_at", "status", "updated_at"),
        # Analytics (migration 0005): one user's jobs of a period; and on PostgreSQL the
        # durations of completed jobs in order per document type and extractor, so that their
        # percentiles are read off an index-only scan instead of sorting every job (SQLite's
        # window functions sort anyway: there they would only cost writes).
        Index("ix_extraction_jobs_owner_created_at", "owner", "created_at"),
        Index(
            "ix_extraction_jobs_completed_document_type",
            "document_type",
            "duration_ms",
            postgresql_where=text(_completed_sql),
        ).ddl_if(dialect="postgresql"),
        Index(
            "ix_extraction_jobs_completed_extractor",
            "extractor",
            "duration_ms",
            postgresql_where=text(_completed_sql),
        ).ddl_if(dialect="postgresql"),
    )


class ExtractedData(Base):
    """The result of one job. Unique per job, so a result is written at most once.

    ``cache_key`` identifies what produced it (content, parser, schema, extractor and model):
    a later job with the same key reuses the result instead of extracting again. ``flags``
    lists validation problems found in it.
    """

    __tablename__ = "extracted_data"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(
        ForeignKey("extraction_jobs.id", ondelete="CASCADE"), nullable=False, unique=True
    )
    document_id: Mapped[int] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), nullable=False
    )
    batch_id: Mapped[int] = mapped_column(
        ForeignKey("extraction_batches.id", ondelete="CASCADE"), nullable=False
    )
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False, default=dict)
    schema: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False, default=dict)
    confidence: Mapped[float | None] = mapped_column(Float)
    flags: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONType, nullable=False, default=list, server_default=text("'[]'")
    )
    cache_key: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    __table_args__ = (
        Index("ix_extracted_data_batch_id", "batch_id"),
        Index("ix_extracted_data_cache_key", "cache_key"),
        Index("ix_extracted_data_document_id", "document_id"),
        Index("ix_extracted_data_data_gin", "data", postgresql_using="gin").ddl_if(
            dialect="postgresql"
        ),
    )


class FieldCorrection(Base):
    """One correction of one extracted value by a person (migration 0007).

    ``field`` is a path: a field name (``total``) or an array item's field
    (``line_items.2.amount``, 0-based). Rows are never updated: the newest correction of a
    field (highest id) is its value, older ones are its history. The extracted result itself is
    left as it was, so the originals stay readable.
    """

    __tablename__ = "corrections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(
        ForeignKey("extraction_batches.id", ondelete="CASCADE"), nullable=False
    )
    document_id: Mapped[int] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), nullable=False
    )
    field: Mapped[str] = mapped_column(String(255), nullable=False)
    old_value: Mapped[Any] = mapped_column(JSONType, nullable=True)
    new_value: Mapped[Any] = mapped_column(JSONType, nullable=True)
    corrected_by: Mapped[str] = mapped_column(String(255), nullable=False)
    corrected_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    __table_args__ = (
        Index("ix_corrections_document_id", "document_id"),
        Index("ix_corrections_batch_id", "batch_id"),
        {"sqlite_autoincrement": True},
    )


class Export(Base):
    """One export: what was asked (selection, format, mode, options), its progress and file.

    ``managed`` exports were written to the workspace's exports folder under a generated name;
    the cleanup task removes their files once ``expires_at`` has passed. A file written to a
    path the user named is theirs and is never removed.
    """

    __tablename__ = "exports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner: Mapped[str] = mapped_column(String(255), nullable=False)
    batch_id: Mapped[int | None] = mapped_column(
        ForeignKey("extraction_batches.id", ondelete="SET NULL")
    )
    selection: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False, default=dict)
    format: Mapped[str] = mapped_column(String(16), nullable=False)
    mode: Mapped[str] = mapped_column(String(16), nullable=False, default="normal")
    status: Mapped[str] = _status()
    row_count: Mapped[int | None] = mapped_column(BigInteger)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    location: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    options: Mapped[dict[str, Any]] = mapped_column(
        JSONType, nullable=False, default=dict, server_default=text("'{}'")
    )
    documents_total: Mapped[int | None] = mapped_column(BigInteger)
    documents_done: Mapped[int] = mapped_column(
        BigInteger, nullable=False, default=0, server_default=text("0")
    )
    managed: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=text("false")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, nullable=False, default=utcnow, onupdate=utcnow
    )
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_exports_owner_created_at", "owner", "created_at"),
        Index("ix_exports_status_updated_at", "status", "updated_at"),
        Index("ix_exports_expires_at", "expires_at"),
        {"sqlite_autoincrement": True},
    )


class ProcessingQueue(Base):
    __tablename__ = "processing_queues"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    concurrency_limit: Mapped[int] = mapped_column(Integer, nullable=False)
    max_attempts: Mapped[int] = mapped_column(Integer, nullable=False)
    retry_delay_seconds: Mapped[float] = mapped_column(Float, nullable=False)
    retry_backoff: Mapped[float] = mapped_column(Float, nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, nullable=False, default=utcnow, onupdate=utcnow
    )


class QueueItem(Base):
    """One unit of work. Huey messages carry only this row's id; the row is the truth."""

    __tablename__ = "queue_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    queue_name: Mapped[str] = mapped_column(
        ForeignKey("processing_queues.name", ondelete="CASCADE"), nullable=False
    )
    job_type: Mapped[str] = mapped_column(String(64), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False, default=dict)
    batch_id: Mapped[int | None] = mapped_column(
        ForeignKey("extraction_batches.id", ondelete="CASCADE")
    )
    owner: Mapped[str] = mapped_column(String(255), nullable=False)
    status: Mapped[str] = _status()
    priority: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    locked_by: Mapped[str | None] = mapped_column(String(255))
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    scheduled_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, nullable=False, default=utcnow, onupdate=utcnow
    )
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_queue_items_batch_id_status", "batch_id", "status"),
        Index("ix_queue_items_status_updated_at", "status", "updated_at"),
        # One user's hourly trends: their items finished in a period (migration 0005).
        Index("ix_queue_items_owner_finished_at", "owner", "finished_at"),
        # Leasing reads the best ready item straight off this index (see queue/items.py).
        Index(
            "ix_queue_items_ready",
            "queue_name",
            text("priority DESC"),
            "scheduled_at",
            "id",
            sqlite_where=text(_ready_sql),
            postgresql_where=text(_ready_sql),
        ),
        Index(
            "ix_queue_items_active",
            "queue_name",
            "status",
            sqlite_where=text(_active_sql),
            postgresql_where=text(_active_sql),
        ),
        Index(
            "ix_queue_items_failed",
            "queue_name",
            "updated_at",
            sqlite_where=text(_failed_sql),
            postgresql_where=text(_failed_sql),
        ),
    )


class QueueStat(Base):
    """Hourly aggregates per queue, written by the periodic stats task."""

    __tablename__ = "queue_stats"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    queue_name: Mapped[str] = mapped_column(String(64), nullable=False)
    hour: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    created: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    completed: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    failed: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    cancelled: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    retried: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    mean_duration_ms: Mapped[float | None] = mapped_column(Float)
    max_duration_ms: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, nullable=False, default=utcnow, onupdate=utcnow
    )

    __table_args__ = (UniqueConstraint("queue_name", "hour"),)


class Worker(Base):
    """A consumer's heartbeat row; a worker silent for three heartbeats is considered gone."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255), nullable=False)
    pid: Mapped[int] = mapped_column(Integer, nullable=False)
    threads: Mapped[int] = mapped_column(Integer, nullable=False)
    in_process: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_workers_last_seen", "last_seen"),)


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    actor: Mapped[str] = mapped_column(String(255), nullable=False)
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    target_type: Mapped[str] = mapped_column(String(64), nullable=False)
    target_id: Mapped[str | None] = mapped_column(String(64))
    allowed: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    __table_args__ = (
        Index("ix_audit_events_actor_created_at", "actor", "created_at"),
        Index("ix_audit_events_target_type_target_id", "target_type", "target_id"),
    )


DEFAULT_QUEUES: tuple[dict[str, Any], ...] = (
    {
        "name": "batch_processing",
        "concurrency_limit": 8,
        "max_attempts": 3,
        "retry_delay_seconds": 5.0,
        "retry_backoff": 2.0,
    },
    {
        "name": "exports",
        "concurrency_limit": 2,
        "max_attempts": 3,
        "retry_delay_seconds": 10.0,
        "retry_backoff": 2.0,
    },
)
