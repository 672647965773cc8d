"""Initial schema: batches, documents, jobs, results, exports, queues, workers, audit.

Revision ID: 0001
Revises:
Create Date: 2026-11-29

Written out by hand, table by table, from ``batchnb.db.models`` as it stood at this revision. It
does not import the models: they will change, and this revision must keep creating exactly this
schema. Constraint names follow the models' naming convention (``pk_<table>``,
``fk_<table>_<column>_<referred table>``, ``uq_<table>_<columns>``) so that later revisions can
drop them by name on both dialects.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The models' types as stored: JSONB on PostgreSQL (indexable with GIN), JSON elsewhere, and
# timezone-aware timestamps (the models' UTCDateTime is a TypeDecorator over this).
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
UTC_DATETIME = sa.DateTime(timezone=True)

ACTIVE_SQL = "status IN ('pending', 'processing', 'retrying')"
FAILED_SQL = "status = 'failed'"
READY_SQL = "status IN ('pending', 'retrying')"

DEFAULT_QUEUES = (
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
    {
        "name": "cleanup",
        "concurrency_limit": 1,
        "max_attempts": 1,
        "retry_delay_seconds": 60.0,
        "retry_backoff": 1.0,
    },
)

TABLES = (
    "extraction_batches",
    "documents",
    "processing_queues",
    "queue_items",
    "extraction_jobs",
    "extracted_data",
    "exports",
    "queue_stats",
    "workers",
    "audit_events",
)
"""Every table, parents before children: created in this order, dropped in reverse."""


def upgrade() -> None:
    is_postgresql = op.get_context().dialect.name == "postgresql"
    if is_postgresql:
        # Trigram matching backs "file name contains ..." searches on large batches.
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")

    op.create_table(
        "extraction_batches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("strategy", sa.String(32), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=True),
        sa.Column("extractor", sa.String(64), nullable=False),
        sa.Column("plan", sa.String(32), nullable=False),
        sa.Column("options", JSON, nullable=False),
        sa.Column("document_count", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.Column("completed_at", UTC_DATETIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_extraction_batches"),
    )
    op.create_index(
        "ix_extraction_batches_owner_created_at", "extraction_batches", ["owner", "created_at"]
    )
    op.create_index(
        "ix_extraction_batches_status_updated_at", "extraction_batches", ["status", "updated_at"]
    )

    op.create_table(
        "documents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("file_name", sa.String(255), nullable=False),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("storage_key", sa.String(255), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("file_type", sa.String(32), nullable=False),
        sa.Column("mime_type", sa.String(128), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=True),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("page_count", sa.Integer(), nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_documents"),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["extraction_batches.id"],
            name="fk_documents_batch_id_extraction_batches",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_documents_batch_id_status", "documents", ["batch_id", "status"])
    op.create_index("ix_documents_content_hash", "documents", ["content_hash"])
    op.create_index("ix_documents_owner_created_at", "documents", ["owner", "created_at"])
    op.create_index(
        "ix_documents_failed",
        "documents",
        ["batch_id"],
        sqlite_where=sa.text(FAILED_SQL),
        postgresql_where=sa.text(FAILED_SQL),
    )
    if is_postgresql:
        op.create_index(
            "ix_documents_file_name_trgm",
            "documents",
            ["file_name"],
            postgresql_using="gin",
            postgresql_ops={"file_name": "gin_trgm_ops"},
        )

    processing_queues = op.create_table(
        "processing_queues",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("concurrency_limit", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("retry_delay_seconds", sa.Float(), nullable=False),
        sa.Column("retry_backoff", sa.Float(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_processing_queues"),
        sa.UniqueConstraint("name", name="uq_processing_queues_name"),
    )
    now = datetime.now(UTC)
    op.bulk_insert(
        processing_queues,
        [
            {**queue, "active": True, "created_at": now, "updated_at": now}
            for queue in DEFAULT_QUEUES
        ],
    )

    op.create_table(
        "queue_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("queue_name", sa.String(64), nullable=False),
        sa.Column("job_type", sa.String(64), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=True),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("locked_by", sa.String(255), nullable=True),
        sa.Column("locked_until", UTC_DATETIME, nullable=True),
        sa.Column("scheduled_at", UTC_DATETIME, nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.Column("started_at", UTC_DATETIME, nullable=True),
        sa.Column("finished_at", UTC_DATETIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_queue_items"),
        sa.ForeignKeyConstraint(
            ["queue_name"],
            ["processing_queues.name"],
            name="fk_queue_items_queue_name_processing_queues",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["extraction_batches.id"],
            name="fk_queue_items_batch_id_extraction_batches",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_queue_items_batch_id_status", "queue_items", ["batch_id", "status"])
    op.create_index("ix_queue_items_status_updated_at", "queue_items", ["status", "updated_at"])
    op.create_index(
        "ix_queue_items_ready",
        "queue_items",
        ["queue_name", sa.text("priority DESC"), "scheduled_at", "id"],
        sqlite_where=sa.text(READY_SQL),
        postgresql_where=sa.text(READY_SQL),
    )
    op.create_index(
        "ix_queue_items_active",
        "queue_items",
        ["queue_name", "status"],
        sqlite_where=sa.text(ACTIVE_SQL),
        postgresql_where=sa.text(ACTIVE_SQL),
    )
    op.create_index(
        "ix_queue_items_failed",
        "queue_items",
        ["queue_name", "updated_at"],
        sqlite_where=sa.text(FAILED_SQL),
        postgresql_where=sa.text(FAILED_SQL),
    )

    op.create_table(
        "extraction_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("queue_item_id", sa.Integer(), nullable=True),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=True),
        sa.Column("extractor", sa.String(64), nullable=False),
        sa.Column("parser", sa.String(64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", UTC_DATETIME, nullable=True),
        sa.Column("finished_at", UTC_DATETIME, nullable=True),
        sa.Column("duration_ms", sa.Float(), nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_extraction_jobs"),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["extraction_batches.id"],
            name="fk_extraction_jobs_batch_id_extraction_batches",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.id"],
            name="fk_extraction_jobs_document_id_documents",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["queue_item_id"],
            ["queue_items.id"],
            name="fk_extraction_jobs_queue_item_id_queue_items",
            ondelete="SET NULL",
        ),
    )
    op.create_index("ix_extraction_jobs_batch_id_status", "extraction_jobs", ["batch_id", "status"])
    op.create_index("ix_extraction_jobs_document_id", "extraction_jobs", ["document_id"])
    op.create_index(
        "ix_extraction_jobs_status_updated_at", "extraction_jobs", ["status", "updated_at"]
    )

    op.create_table(
        "extracted_data",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("data", JSON, nullable=False),
        sa.Column("evidence", JSON, nullable=False),
        sa.Column("schema", JSON, nullable=False),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_extracted_data"),
        # One result per job: the worker's write is an idempotent upsert on this key.
        sa.UniqueConstraint("job_id", name="uq_extracted_data_job_id"),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["extraction_jobs.id"],
            name="fk_extracted_data_job_id_extraction_jobs",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.id"],
            name="fk_extracted_data_document_id_documents",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["extraction_batches.id"],
            name="fk_extracted_data_batch_id_extraction_batches",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_extracted_data_batch_id", "extracted_data", ["batch_id"])
    op.create_index("ix_extracted_data_document_id", "extracted_data", ["document_id"])
    if is_postgresql:
        op.create_index(
            "ix_extracted_data_data_gin", "extracted_data", ["data"], postgresql_using="gin"
        )

    op.create_table(
        "exports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=True),
        sa.Column("selection", JSON, nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("row_count", sa.BigInteger(), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("location", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.Column("expires_at", UTC_DATETIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_exports"),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["extraction_batches.id"],
            name="fk_exports_batch_id_extraction_batches",
            ondelete="SET NULL",
        ),
    )
    op.create_index("ix_exports_owner_created_at", "exports", ["owner", "created_at"])
    op.create_index("ix_exports_status_updated_at", "exports", ["status", "updated_at"])
    op.create_index("ix_exports_expires_at", "exports", ["expires_at"])

    op.create_table(
        "queue_stats",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("queue_name", sa.String(64), nullable=False),
        sa.Column("hour", UTC_DATETIME, nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("completed", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("cancelled", sa.Integer(), nullable=False),
        sa.Column("retried", sa.Integer(), nullable=False),
        sa.Column("mean_duration_ms", sa.Float(), nullable=True),
        sa.Column("max_duration_ms", sa.Float(), nullable=True),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_queue_stats"),
        sa.UniqueConstraint("queue_name", "hour", name="uq_queue_stats_queue_name_hour"),
    )

    op.create_table(
        "workers",
        sa.Column("id", sa.String(255), nullable=False),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("threads", sa.Integer(), nullable=False),
        sa.Column("in_process", sa.Boolean(), nullable=False),
        sa.Column("started_at", UTC_DATETIME, nullable=False),
        sa.Column("last_seen", UTC_DATETIME, nullable=False),
        sa.Column("stopped_at", UTC_DATETIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_workers"),
    )
    op.create_index("ix_workers_last_seen", "workers", ["last_seen"])

    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target_type", sa.String(64), nullable=False),
        sa.Column("target_id", sa.String(64), nullable=True),
        sa.Column("allowed", sa.Boolean(), nullable=False),
        sa.Column("details", JSON, nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_events"),
    )
    op.create_index("ix_audit_events_actor_created_at", "audit_events", ["actor", "created_at"])
    op.create_index(
        "ix_audit_events_target_type_target_id", "audit_events", ["target_type", "target_id"]
    )


def downgrade() -> None:
    # Dropping a table drops its indexes with it; children go before the parents they reference.
    # pg_trgm stays: other schemas in the same database may use it.
    for table in reversed(TABLES):
        op.drop_table(table)
