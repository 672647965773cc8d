"""What the queue looks like now: waiting and running items, recent outcomes, live workers.

These are the reads behind ``batchnb health``; each is one aggregate over ``queue_items`` or
the heartbeat rows of ``workers``, served by the partial indexes on item status.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from batchnb.db.engine import Database
from batchnb.db.models import QueueItem, Worker
from batchnb.db.statuses import ItemStatus
from batchnb.queue.items import READY_STATUSES


@dataclass(frozen=True)
class QueueState:
    """Items due and waiting per queue, items running, the oldest due item, the last hour."""

    depth: dict[str, int]
    processing: int
    oldest_due: datetime | None
    completed_last_hour: int
    failed_last_hour: int


def queue_state(db: Database, now: datetime) -> QueueState:
    """Measure the queue as of ``now``."""
    due = (QueueItem.status.in_(READY_STATUSES), QueueItem.scheduled_at <= now)
    with db.connect() as connection:
        depth = dict(
            connection.execute(
                select(QueueItem.queue_name, func.count())
                .where(*due)
                .group_by(QueueItem.queue_name)
            ).all()
        )
        processing = connection.scalar(
            select(func.count()).where(QueueItem.status == ItemStatus.PROCESSING.value)
        )
        oldest = connection.scalar(select(func.min(QueueItem.scheduled_at)).where(*due))
        finished = dict(
            connection.execute(
                select(QueueItem.status, func.count())
                .where(QueueItem.finished_at >= now - timedelta(hours=1))
                .group_by(QueueItem.status)
            ).all()
        )
    return QueueState(
        depth={str(name): int(count) for name, count in depth.items()},
        processing=int(processing or 0),
        oldest_due=oldest,
        completed_last_hour=int(finished.get(ItemStatus.COMPLETED, 0)),
        failed_last_hour=int(finished.get(ItemStatus.FAILED, 0)),
    )


def live_workers(db: Database, now: datetime, heartbeat_seconds: float) -> list[Worker]:
    """Workers that sent a heartbeat within three heartbeat intervals and did not stop."""
    horizon = now - timedelta(seconds=3 * heartbeat_seconds)
    with db.read() as session:
        return list(
            session.execute(
                select(Worker).where(Worker.last_seen >= horizon, Worker.stopped_at.is_(None))
            ).scalars()
        )
