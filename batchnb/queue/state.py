"""What the queue looks like now: waiting and running items, recent outcomes, live workers.

These are the reads behind ``batchnb health``; each is one aggregate over ``queue_items`` or
the heartbeat rows of ``workers``, served by the partial indexes on item status (and, for a
stall, by the index on ``(status, updated_at)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, exists, func, select

from batchnb.db.engine import Database
from batchnb.db.models import ProcessingQueue, QueueItem, Worker
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


@dataclass(frozen=True)
class Stalls:
    """Queues whose due items wait while nothing is leased, and the live leases of all queues.

    ``queues`` maps a queue to its items that have been due for at least the stall time, for
    each active queue below its concurrency limit from which no item was leased in that time.
    Whether consumers had free threads meanwhile is the caller's to judge, against
    ``running``: items whose lease is live, across queues.
    """

    running: int
    queues: dict[str, int]


_NOT_PROCESSING = tuple(status.value for status in ItemStatus if status != ItemStatus.PROCESSING)


def find_stalls(db: Database, now: datetime, stall_seconds: float) -> Stalls:
    """Measure, as of ``now``, which queues had nothing leased for ``stall_seconds``."""
    since = now - timedelta(seconds=stall_seconds)
    live = (QueueItem.status == ItemStatus.PROCESSING.value, QueueItem.locked_until > now)
    with db.connect() as connection:
        running = dict(
            connection.execute(
                select(QueueItem.queue_name, func.count())
                .where(*live)
                .group_by(QueueItem.queue_name)
            ).all()
        )
        queues = connection.execute(
            select(ProcessingQueue.name, ProcessingQueue.concurrency_limit).where(
                ProcessingQueue.active.is_(True)
            )
        ).all()
        stalled: dict[str, int] = {}
        for name, limit in queues:
            if running.get(name, 0) >= limit:
                continue
            waiting = connection.scalar(
                select(func.count()).where(
                    QueueItem.queue_name == name,
                    QueueItem.status.in_(READY_STATUSES),
                    QueueItem.scheduled_at <= since,
                )
            )
            if waiting and not _leased_since(connection, name, since):
                stalled[str(name)] = int(waiting)
    return Stalls(running=sum(int(count) for count in running.values()), queues=stalled)


def _leased_since(connection: Connection, queue_name: str, since: datetime) -> bool:
    """Whether an item of the queue was leased at or after ``since`` (and may since be done).

    Every change after a lease sets ``updated_at``, so an item leased since then and moved on
    (finished, retried, released) is found on the ``(status, updated_at)`` index; one still
    running is found among the few processing items.
    """
    running = exists().where(
        QueueItem.queue_name == queue_name,
        QueueItem.status == ItemStatus.PROCESSING.value,
        QueueItem.started_at >= since,
    )
    moved_on = exists().where(
        QueueItem.status.in_(_NOT_PROCESSING),
        QueueItem.updated_at >= since,
        QueueItem.queue_name == queue_name,
        QueueItem.started_at >= since,
    )
    return bool(connection.scalar(select(running))) or bool(connection.scalar(select(moved_on)))
