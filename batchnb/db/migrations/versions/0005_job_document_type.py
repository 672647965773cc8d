"""Each extraction job's document type, and indexes for the analytics summary.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30

Analytics group processing times by document type: the type an "auto" run classified (in its
result's evidence under ``_document``), else the file type. Reading that meant joining every
completed job to its result and its document; the job now carries it. Completed jobs are
filled from their results and documents here; the worker writes it from now on.

The indexes: one user's jobs of a period, one user's queue items by the time they finished
(the hourly trends of one user), and on PostgreSQL completed jobs' durations in order per
document type and per extractor (the percentiles are read off them by an index-only scan
instead of sorting every job; SQLite's window functions sort anyway).

Written out literally: this revision does not import batchnb.db.models.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COMPLETED = "status = 'completed'"
_CLASSIFIED_TYPE = {
    "postgresql": "e.evidence #>> '{_document,type}'",
    "sqlite": "json_extract(e.evidence, '$._document.type')",
}


def upgrade() -> None:
    # Plain ADD COLUMN works on both dialects and in --sql mode (see 0002).
    op.add_column(
        "extraction_jobs", sa.Column("document_type", sa.String(length=64), nullable=True)
    )
    dialect = op.get_context().dialect.name
    classified = _CLASSIFIED_TYPE[dialect]
    op.execute(
        "UPDATE extraction_jobs SET document_type = coalesce("
        f"(SELECT {classified} FROM extracted_data e WHERE e.job_id = extraction_jobs.id), "
        "(SELECT d.file_type FROM documents d WHERE d.id = extraction_jobs.document_id)) "
        "WHERE status = 'completed'"
    )
    # After the fill, so each index is built once rather than updated row by row.
    op.create_index(
        "ix_extraction_jobs_owner_created_at", "extraction_jobs", ["owner", "created_at"]
    )
    op.create_index("ix_queue_items_owner_finished_at", "queue_items", ["owner", "finished_at"])
    if dialect == "postgresql":
        op.create_index(
            "ix_extraction_jobs_completed_document_type",
            "extraction_jobs",
            ["document_type", "duration_ms"],
            postgresql_where=sa.text(_COMPLETED),
        )
        op.create_index(
            "ix_extraction_jobs_completed_extractor",
            "extraction_jobs",
            ["extractor", "duration_ms"],
            postgresql_where=sa.text(_COMPLETED),
        )


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.drop_index("ix_extraction_jobs_completed_extractor", table_name="extraction_jobs")
        op.drop_index("ix_extraction_jobs_completed_document_type", table_name="extraction_jobs")
    op.drop_index("ix_queue_items_owner_finished_at", table_name="queue_items")
    with op.batch_alter_table("extraction_jobs") as batch:
        batch.drop_index("ix_extraction_jobs_owner_created_at")
        batch.drop_column("document_type")
