"""Periodic housekeeping: hourly queue statistics and expired temporary files."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from batchnb.db.engine import Database
from batchnb.db.models import QueueItem, QueueStat
from batchnb.queue.maintenance import remove_expired_temp_files
from batchnb.queue.stats import aggregate_queue_stats

NOW = datetime(2026, 11, 29, 15, 40, tzinfo=UTC)


def _item(
    status: str,
    created: datetime,
    started: datetime | None = None,
    finished: datetime | None = None,
    attempts: int = 1,
    queue: str = "batch_processing",
) -> QueueItem:
    return QueueItem(
        queue_name=queue,
        job_type="probe",
        payload={},
        owner="t",
        status=status,
        priority=0,
        attempts=attempts,
        scheduled_at=created,
        created_at=created,
        updated_at=created,
        started_at=started,
        finished_at=finished,
    )


def test_hourly_stats_match_hand_computed_values(database: Database) -> None:
    h15 = NOW.replace(minute=0)
    h14 = h15 - timedelta(hours=1)
    with database.write() as session:
        session.add_all(
            [
                _item(
                    "completed",
                    h14 + timedelta(minutes=5),
                    h14 + timedelta(minutes=6),
                    h14 + timedelta(minutes=6, seconds=2),
                ),
                _item(
                    "completed",
                    h14 + timedelta(minutes=50),
                    h14 + timedelta(minutes=59),
                    h15 + timedelta(minutes=1),
                    attempts=2,
                ),
                _item(
                    "failed",
                    h15 + timedelta(minutes=2),
                    h15 + timedelta(minutes=3),
                    h15 + timedelta(minutes=4),
                    attempts=3,
                ),
                _item("pending", h15 + timedelta(minutes=10)),
                _item(
                    "completed",
                    h15 + timedelta(minutes=11),
                    h15 + timedelta(minutes=12),
                    h15 + timedelta(minutes=12, seconds=4),
                    queue="exports",
                ),
            ]
        )
    assert aggregate_queue_stats(database, hours=2, now=NOW) == 3
    assert aggregate_queue_stats(database, hours=2, now=NOW) == 3  # idempotent
    with database.read() as session:
        rows = {(r.queue_name, r.hour.hour): r for r in session.scalars(select(QueueStat))}
    assert set(rows) == {("batch_processing", 14), ("batch_processing", 15), ("exports", 15)}
    past = rows[("batch_processing", 14)]
    assert (past.created, past.completed, past.failed, past.retried) == (2, 1, 0, 0)
    assert past.mean_duration_ms == 2000
    current = rows[("batch_processing", 15)]
    assert (current.created, current.completed, current.failed, current.retried) == (2, 1, 1, 2)
    assert current.mean_duration_ms == current.max_duration_ms == 120_000
    assert rows[("exports", 15)].mean_duration_ms == 4000


def test_only_expired_temp_files_are_removed(tmp_path: Path) -> None:
    old_dir = tmp_path / "upload-1"
    old_dir.mkdir()
    old, fresh = old_dir / "part", tmp_path / "fresh"
    old.write_bytes(b"x")
    fresh.write_bytes(b"y")
    two_days_ago = time.time() - 48 * 3600
    os.utime(old, (two_days_ago, two_days_ago))
    os.utime(old_dir, (two_days_ago, two_days_ago))
    assert remove_expired_temp_files(tmp_path, max_age_hours=24) == 1
    assert fresh.exists() and not old.exists()
    assert remove_expired_temp_files(tmp_path / "missing", 24) == 0
