"""Corrections of extracted values, and documents marked as reviewed.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05

People check what was extracted and fix what is wrong. Each fix is a row of ``corrections``
(who, when, the value before and after, which document and which field path), so the
extracted result stays as it was and the newest correction of a field wins wherever results
are read. A document someone has checked carries ``reviewed_at`` and ``reviewed_by``.

Written out literally: this revision does not import batchnb.db.models.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "corrections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(255), nullable=False),
        sa.Column("old_value", JSON, nullable=True),
        sa.Column("new_value", JSON, nullable=True),
        sa.Column("corrected_by", sa.String(255), nullable=False),
        sa.Column("corrected_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_corrections"),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["extraction_batches.id"],
            name="fk_corrections_batch_id_extraction_batches",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.id"],
            name="fk_corrections_document_id_documents",
            ondelete="CASCADE",
        ),
        # SQLite would otherwise reuse a deleted correction's id (see 0004).
        sqlite_autoincrement=True,
    )
    op.create_index("ix_corrections_document_id", "corrections", ["document_id"])
    op.create_index("ix_corrections_batch_id", "corrections", ["batch_id"])
    # Plain ADD COLUMN works on both dialects and in --sql mode (see 0002).
    op.add_column("documents", sa.Column("reviewed_at", UTC_DATETIME, nullable=True))
    op.add_column("documents", sa.Column("reviewed_by", sa.String(255), nullable=True))


def downgrade() -> None:
    # SQLite drops a column by copying the table: the copy keeps AUTOINCREMENT (see 0004).
    with op.batch_alter_table("documents", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("reviewed_by")
        batch.drop_column("reviewed_at")
    op.drop_index("ix_corrections_batch_id", table_name="corrections")
    op.drop_index("ix_corrections_document_id", table_name="corrections")
    op.drop_table("corrections")
