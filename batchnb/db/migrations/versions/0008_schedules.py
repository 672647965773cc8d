"""Schedules: notebooks run by papermill on a cron timetable, and their runs.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05

``schedules`` holds what to run and when (``next_due_at``); ``schedule_runs`` one row per run.
The unique constraint on ``(schedule_id, due_at)`` is the exactly-once guarantee: a worker
claims a due time by inserting that row, and a second worker's insert fails.

Written out literally: this revision does not import batchnb.db.models.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("notebook", sa.Text(), nullable=False),
        sa.Column("cron", sa.String(255), nullable=False),
        sa.Column("parameters", JSON, nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("output_dir", sa.Text(), nullable=False),
        sa.Column("working_dir", sa.Text(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.Column("next_due_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_schedules"),
        sa.UniqueConstraint("name", name="uq_schedules_name"),
        # SQLite would otherwise reuse a deleted schedule's id (see 0004).
        sqlite_autoincrement=True,
    )
    op.create_index("ix_schedules_next_due_at", "schedules", ["next_due_at"])
    op.create_table(
        "schedule_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("schedule_id", sa.Integer(), nullable=False),
        sa.Column("due_at", UTC_DATETIME, nullable=False),
        sa.Column("started_at", UTC_DATETIME, nullable=False),
        sa.Column("finished_at", UTC_DATETIME, nullable=True),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("output_path", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("worker_id", sa.String(255), nullable=True),
        sa.Column("manual", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_schedule_runs"),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["schedules.id"],
            name="fk_schedule_runs_schedule_id_schedules",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("schedule_id", "due_at", name="uq_schedule_runs_schedule_id_due_at"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_schedule_runs_started_at", "schedule_runs", ["started_at"])


def downgrade() -> None:
    op.drop_index("ix_schedule_runs_started_at", table_name="schedule_runs")
    op.drop_table("schedule_runs")
    op.drop_index("ix_schedules_next_due_at", table_name="schedules")
    op.drop_table("schedules")
