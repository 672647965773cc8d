"""Result cache key and validation flags on extracted data.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29

Written out literally: this revision does not import batchnb.db.models.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    # Plain ADD COLUMN works on both dialects (and in --sql mode, where batch mode cannot
    # reflect the table); only the downgrade needs SQLite's table copy.
    op.add_column(
        "extracted_data",
        sa.Column("flags", JSON, nullable=False, server_default=sa.text("'[]'")),
    )
    op.add_column("extracted_data", sa.Column("cache_key", sa.String(length=64), nullable=True))
    op.create_index("ix_extracted_data_cache_key", "extracted_data", ["cache_key"])


def downgrade() -> None:
    with op.batch_alter_table("extracted_data") as batch:
        batch.drop_index("ix_extracted_data_cache_key")
        batch.drop_column("cache_key")
        batch.drop_column("flags")
