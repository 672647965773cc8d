"""Hourly aggregates of queue activity into ``queue_stats`` (feeds health and analytics)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from batchnb.db.engine import Database
from batchnb.db.models import ItemStatus, QueueItem, QueueStat, utcnow


def hour_start(moment: datetime) -> datetime:
    """The start of the hour containing ``moment``."""
    return moment.replace(minute=0, second=0, microsecond=0)


def _aggregate_hour(session: Session, hour: datetime) -> dict[str, dict[str, float | int | None]]:
    end = hour + timedelta(hours=1)
    per_queue: dict[str, dict[str, float | int | None]] = {}
    durations: dict[str, list[float]] = {}

    def counters(queue: str) -> dict[str, float | int | None]:
        return per_queue.setdefault(
            queue, {"created": 0, "completed": 0, "failed": 0, "cancelled": 0, "retried": 0}
        )

    created = session.execute(
        select(QueueItem.queue_name).where(QueueItem.created_at >= hour, QueueItem.created_at < end)
    ).scalars()
    for queue in created:
        counter = counters(queue)
        counter["created"] = int(counter["created"] or 0) + 1
    finished = session.execute(
        select(
            QueueItem.queue_name,
            QueueItem.status,
            QueueItem.attempts,
            QueueItem.started_at,
            QueueItem.finished_at,
        ).where(QueueItem.finished_at >= hour, QueueItem.finished_at < end)
    ).all()
    for queue, status, attempts, started_at, finished_at in finished:
        counter = counters(queue)
        if status in (ItemStatus.COMPLETED, ItemStatus.FAILED, ItemStatus.CANCELLED):
            counter[status] = int(counter[status] or 0) + 1
        if attempts > 1:
            counter["retried"] = int(counter["retried"] or 0) + 1
        if status == ItemStatus.COMPLETED and started_at is not None and finished_at is not None:
            ms = (finished_at - started_at).total_seconds() * 1000
            durations.setdefault(queue, []).append(ms)
    for queue, counter in per_queue.items():
        values = durations.get(queue, [])
        counter["mean_duration_ms"] = sum(values) / len(values) if values else None
        counter["max_duration_ms"] = max(values) if values else None
    return per_queue


def aggregate_queue_stats(db: Database, hours: int = 2, now: datetime | None = None) -> int:
    """Recompute the last ``hours`` hours (the current one included); returns rows written.

    Recomputing rather than incrementing makes the task idempotent: running it twice, or from
    two workers, gives the same rows.
    """
    current = hour_start(now or utcnow())
    written = 0
    for back in range(hours):
        hour = current - timedelta(hours=back)
        for attempt in range(2):
            try:
                with db.write() as session:
                    for queue, values in _aggregate_hour(session, hour).items():
                        row = session.execute(
                            select(QueueStat).where(
                                QueueStat.queue_name == queue, QueueStat.hour == hour
                            )
                        ).scalar_one_or_none()
                        if row is None:
                            row = QueueStat(queue_name=queue, hour=hour)
                            session.add(row)
                        for key, value in values.items():
                            setattr(row, key, value)
                        written += 1
                break
            except IntegrityError:
                if attempt:
                    raise
    return written
