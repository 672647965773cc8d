"""Export options and progress; trigram index for searching batch names on PostgreSQL.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29

Written out literally: this revision does not import batchnb.db.models.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.add_column(
        "exports", sa.Column("options", JSON, nullable=False, server_default=sa.text("'{}'"))
    )
    op.add_column("exports", sa.Column("documents_total", sa.BigInteger(), nullable=True))
    op.add_column(
        "exports",
        sa.Column("documents_done", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
    )
    op.add_column(
        "exports",
        sa.Column("managed", sa.Boolean(), nullable=False, server_default=sa.text("false")),
    )
    if op.get_context().dialect.name == "postgresql":
        op.create_index(
            "ix_extraction_batches_name_trgm",
            "extraction_batches",
            ["name"],
            postgresql_using="gin",
            postgresql_ops={"name": "gin_trgm_ops"},
        )


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.drop_index("ix_extraction_batches_name_trgm", table_name="extraction_batches")
    with op.batch_alter_table("exports") as batch:
        batch.drop_column("managed")
        batch.drop_column("documents_done")
        batch.drop_column("documents_total")
        batch.drop_column("options")
