"""Queue activity per hour, and how long completed items ran: the queue's own figures.

:func:`hourly_activity` aggregates ``queue_items`` in SQL per UTC hour and queue: an item
counts as created in the hour of ``created_at`` and as completed, failed, cancelled or retried
(more than one attempt) in the hour of ``finished_at``; durations are those of completed items.
The periodic task :func:`aggregate_queue_stats` stores the whole workspace's figures in
``queue_stats`` (analytics read them there); a report for one user computes them from that
user's items with the same function.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, case, func, select
from sqlalchemy.exc import IntegrityError

from batchnb.db.engine import Database
from batchnb.db.models import QueueItem, QueueStat, utcnow
from batchnb.db.scope import Scope, hour_start
from batchnb.db.sql import elapsed_ms, utc_hour
from batchnb.db.statuses import ItemStatus


@dataclass(frozen=True)
class HourlyActivity:
    """One queue's activity in one UTC hour (the columns of ``queue_stats``)."""

    hour: datetime
    queue: str
    created: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    retried: int = 0
    mean_duration_ms: float | None = None
    max_duration_ms: float | None = None


def _as_hour(value: Any) -> datetime:
    """An hour as the database returned it (SQLite: text; PostgreSQL: naive UTC) in UTC."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _count(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.sum(case((condition, 1), else_=0))


def hourly_activity(connection: Connection, scope: Scope) -> list[HourlyActivity]:
    """Activity per (hour, queue) of the items of ``scope`` (whole hours), sorted."""
    hours = scope.hours()
    created_hour = utc_hour(QueueItem.created_at).label("hour")
    created = connection.execute(
        select(created_hour, QueueItem.queue_name, func.count())
        .where(*hours.where(QueueItem.created_at, QueueItem.owner))
        .group_by(created_hour, QueueItem.queue_name)
    ).all()
    finished_hour = utc_hour(QueueItem.finished_at).label("hour")
    done = QueueItem.status == ItemStatus.COMPLETED.value
    elapsed = case(
        (
            done & QueueItem.started_at.is_not(None),
            elapsed_ms(QueueItem.started_at, QueueItem.finished_at),
        ),
    )
    finished = connection.execute(
        select(
            finished_hour,
            QueueItem.queue_name,
            _count(done),
            _count(QueueItem.status == ItemStatus.FAILED.value),
            _count(QueueItem.status == ItemStatus.CANCELLED.value),
            _count(QueueItem.attempts > 1),
            func.avg(elapsed),
            func.max(elapsed),
        )
        .where(
            QueueItem.finished_at.is_not(None),
            *hours.where(QueueItem.finished_at, QueueItem.owner),
        )
        .group_by(finished_hour, QueueItem.queue_name)
    ).all()
    found: dict[tuple[datetime, str], dict[str, Any]] = {}
    for hour, queue, count in created:
        found.setdefault((_as_hour(hour), queue), {})["created"] = int(count)
    for hour, queue, completed, failed, cancelled, retried, mean, longest in finished:
        found.setdefault((_as_hour(hour), queue), {}).update(
            completed=int(completed or 0),
            failed=int(failed or 0),
            cancelled=int(cancelled or 0),
            retried=int(retried or 0),
            mean_duration_ms=None if mean is None else float(mean),
            max_duration_ms=None if longest is None else float(longest),
        )
    return [
        HourlyActivity(hour=hour, queue=queue, **values)
        for (hour, queue), values in sorted(found.items())
    ]


def stored_hourly_activity(connection: Connection, scope: Scope) -> list[HourlyActivity]:
    """The whole workspace's activity of the hours overlapping ``scope``, as
    :func:`aggregate_queue_stats` stored it in ``queue_stats`` (no per-owner figures there)."""
    names = [spec.name for spec in fields(HourlyActivity)][2:]
    rows = connection.execute(
        select(QueueStat.hour, QueueStat.queue_name, *(getattr(QueueStat, n) for n in names))
        .where(*scope.hours().period(QueueStat.hour))
        .order_by(QueueStat.hour, QueueStat.queue_name)
    ).all()
    return [
        HourlyActivity(_as_hour(hour), queue, **dict(zip(names, values, strict=True)))
        for hour, queue, *values in rows
    ]


def completed_durations(scope: Scope) -> Select[Any, Any]:
    """Completed items of every job type created in ``scope``: ``queue`` and run time ``d``."""
    elapsed = elapsed_ms(QueueItem.started_at, QueueItem.finished_at)
    return select(QueueItem.queue_name.label("queue"), elapsed.label("d")).where(
        QueueItem.status == ItemStatus.COMPLETED.value,
        QueueItem.started_at.is_not(None),
        QueueItem.finished_at.is_not(None),
        *scope.where(QueueItem.created_at, QueueItem.owner),
    )


def aggregate_queue_stats(db: Database, hours: int = 2, now: datetime | None = None) -> int:
    """Recompute the last ``hours`` hours (the current one included); returns rows written.

    Recomputing rather than incrementing makes the task idempotent: running it twice, or from
    two workers, gives the same rows.
    """
    current = hour_start(now or utcnow())
    scope = Scope(current - timedelta(hours=hours - 1), current + timedelta(hours=1))
    for attempt in range(2):
        try:
            with db.write() as session:
                activity = hourly_activity(session.connection(), scope)
                for row in activity:
                    values = asdict(row)
                    hour, queue = values.pop("hour"), values.pop("queue")
                    stored = session.execute(
                        select(QueueStat).where(
                            QueueStat.queue_name == queue, QueueStat.hour == hour
                        )
                    ).scalar_one_or_none()
                    if stored is None:
                        stored = QueueStat(queue_name=queue, hour=hour)
                        session.add(stored)
                    for key, value in values.items():
                        setattr(stored, key, value)
            return len(activity)
        except IntegrityError:
            if attempt:
                raise
    return 0
