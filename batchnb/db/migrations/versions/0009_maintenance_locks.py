"""Maintenance locks: one worker at a time runs the recovery round.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05

``maintenance_locks`` holds one row per named lock: who holds it and until when. A worker
claims a lock with a conditional UPDATE (free, expired, or already its own) or, the first
time, by inserting the row (the primary key refuses a second insert). The claim commits at
once, so no database lock is held across time and a frozen or killed holder loses the lock
when ``held_until`` passes.

Written out literally: this revision does not import batchnb.db.models.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "maintenance_locks",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("held_by", sa.String(255), nullable=False),
        sa.Column("held_until", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_maintenance_locks"),
    )


def downgrade() -> None:
    op.drop_table("maintenance_locks")
