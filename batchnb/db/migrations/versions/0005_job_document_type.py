"""Each extraction job's document type; per-owner indexes for one user's analytics.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30

Analytics group processing times by document type: the type an "auto" run classified (in its
result's evidence under ``_document``), else the file type. Reading that meant joining every
completed job to its result and its document; the job now carries it. Completed jobs are
filled from their results and documents here; the worker writes it from now on.

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

_CLASSIFIED_TYPE = {
    "postgresql": "e.evidence #>> '{_document,type}'",
    "sqlite": "json_extract(e.evidence, '$._document.type')",
}


def upgrade() -> None:
    # Plain ADD COLUMN works on both dialects and in --sql mode (see 0002).
    op.add_column(
        "extraction_jobs", sa.Column("document_type", sa.String(length=64), nullable=True)
    )
    op.create_index(
        "ix_extraction_jobs_owner_created_at", "extraction_jobs", ["owner", "created_at"]
    )
    op.create_index("ix_queue_items_owner_finished_at", "queue_items", ["owner", "finished_at"])
    classified = _CLASSIFIED_TYPE[op.get_context().dialect.name]
    op.execute(
        "UPDATE extraction_jobs SET document_type = coalesce("
        f"(SELECT {classified} FROM extracted_data e WHERE e.job_id = extraction_jobs.id), "
        "(SELECT d.file_type FROM documents d WHERE d.id = extraction_jobs.document_id)) "
        "WHERE status = 'completed'"
    )


def downgrade() -> None:
    op.drop_index("ix_queue_items_owner_finished_at", table_name="queue_items")
    with op.batch_alter_table("extraction_jobs") as batch:
        batch.drop_index("ix_extraction_jobs_owner_created_at")
        batch.drop_column("document_type")
