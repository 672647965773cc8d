"""The schedules' tables (migration 0008): notebooks run by papermill on a cron timetable.

A worker claims a due time by inserting its ``schedule_runs`` row; the unique constraint on
``(schedule_id, due_at)`` makes a second worker's insert fail, so each due time runs once
however many workers tick at that moment.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from batchnb.db.base import Base, JSONType, UTCDateTime, utcnow

RUN_STATUSES = ("running", "succeeded", "failed")


class Schedule(Base):
    """A notebook, its papermill parameters and the cron expression saying when it runs.

    ``next_due_at`` is the next time the cron expression names after the last claimed run (or
    after the schedule was added or resumed); ``output_dir`` and ``working_dir`` are fixed when
    the schedule is added, so a worker needs nothing but this row to run it.
    """

    __tablename__ = "schedules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), nullable=False, unique=True)
    notebook: Mapped[str] = mapped_column(Text, nullable=False)
    cron: Mapped[str] = mapped_column(String(255), nullable=False)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False, default=dict)
    owner: Mapped[str] = mapped_column(String(255), nullable=False)
    paused: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    output_dir: Mapped[str] = mapped_column(Text, nullable=False)
    working_dir: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    next_due_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)

    __table_args__ = (
        Index("ix_schedules_next_due_at", "next_due_at"),
        {"sqlite_autoincrement": True},
    )


class ScheduleRun(Base):
    """One run of a schedule: the due time it was for, who ran it, how it ended."""

    __tablename__ = "schedule_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    schedule_id: Mapped[int] = mapped_column(
        ForeignKey("schedules.id", ondelete="CASCADE"), nullable=False
    )
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(24), nullable=False)
    duration_s: Mapped[float | None] = mapped_column(Float)
    output_path: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    worker_id: Mapped[str | None] = mapped_column(String(255))
    manual: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)

    __table_args__ = (
        UniqueConstraint("schedule_id", "due_at"),
        Index("ix_schedule_runs_started_at", "started_at"),
        {"sqlite_autoincrement": True},
    )
