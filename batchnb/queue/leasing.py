"""Leasing: a worker takes the best ready items of a queue, without waiting for any other.

Nothing is locked that another leaser waits for. On PostgreSQL the candidates are taken
``FOR UPDATE SKIP LOCKED``, so concurrent leasers each take different items and a worker
frozen inside its lease transaction (a VM pause, a long GC pause, a host gone) stops nobody.
SQLite's write lock admits one leaser at a time anyway.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import Connection, bindparam, func, select, update

from batchnb.db.models import UTCDateTime, utcnow
from batchnb.db.statuses import ItemStatus
from batchnb.errors import QueueError
from batchnb.queue.items import (
    PROCESSING_CONDITION,
    READY_CONDITION,
    LeasedItem,
    items_table,
    queues_table,
)


class LeaseRefusal(enum.Enum):
    """Why :func:`lease_next` leased nothing although work may exist."""

    AT_CONCURRENCY_LIMIT = "at_concurrency_limit"
    QUEUE_INACTIVE = "queue_inactive"


# The queue's settings and its live leases, read in one statement. Nothing is locked: on
# PostgreSQL a worker frozen inside a lease (a VM pause, a long GC pause, a host gone) must not
# stop the others, so leasers never wait on a shared row (see lease() for the limit).
# A lease is one thread's: it runs its items one at a time, so the limit counts leases (their
# tokens), not items; a group of quick items takes one place, and a dead worker holds no more
# places than it had threads until its leases expire.
_QUEUE_AND_RUNNING = select(
    queues_table.c.active,
    queues_table.c.concurrency_limit,
    queues_table.c.max_attempts,
    queues_table.c.retry_delay_seconds,
    queues_table.c.retry_backoff,
    select(func.count(items_table.c.locked_by.distinct()))
    .select_from(items_table)
    .where(
        items_table.c.queue_name == queues_table.c.name,
        PROCESSING_CONDITION,
        items_table.c.locked_until > bindparam("now", type_=UTCDateTime()),
    )
    .scalar_subquery()
    .label("running"),
).where(queues_table.c.name == bindparam("queue"))
_RUNNING_OTHERS = (
    select(func.count(items_table.c.locked_by.distinct()))
    .select_from(items_table)
    .where(
        items_table.c.queue_name == bindparam("queue"),
        PROCESSING_CONDITION,
        items_table.c.locked_until > bindparam("now", type_=UTCDateTime()),
        items_table.c.locked_by != bindparam("token"),
    )
)
# PostgreSQL: FOR UPDATE SKIP LOCKED, so concurrent leasers each take a different item and
# never wait for one another (or for a frozen one). SQLite compiles no FOR UPDATE: its write
# lock already lets one leaser in at a time.
_BEST_READY = (
    select(items_table.c.id)
    .where(
        items_table.c.queue_name == bindparam("queue"),
        READY_CONDITION,
        items_table.c.scheduled_at <= bindparam("now", type_=UTCDateTime()),
    )
    .order_by(items_table.c.priority.desc(), items_table.c.scheduled_at, items_table.c.id)
    .limit(bindparam("count"))
    .with_for_update(skip_locked=True)
)
_LEASE = (
    update(items_table)
    .where(items_table.c.id.in_(_BEST_READY.scalar_subquery()), READY_CONDITION)
    .values(
        status=ItemStatus.PROCESSING.value,
        locked_by=bindparam("token"),
        locked_until=bindparam("until", type_=UTCDateTime()),
        attempts=items_table.c.attempts + 1,
        started_at=bindparam("now", type_=UTCDateTime()),
        updated_at=bindparam("now", type_=UTCDateTime()),
    )
    .returning(
        items_table.c.id,
        items_table.c.job_type,
        items_table.c.payload,
        items_table.c.batch_id,
        items_table.c.owner,
        items_table.c.attempts,
        items_table.c.priority,
        items_table.c.scheduled_at,
    )
)


def lease(
    connection: Connection,
    queue_name: str,
    token: str,
    lease_seconds: float,
    *,
    count: int = 1,
    now: datetime | None = None,
) -> list[LeasedItem] | LeaseRefusal:
    """Lease up to ``count`` of a queue's best ready items: highest priority, then oldest.

    Returns the leased items (best first; empty when nothing is ready), or a
    :class:`LeaseRefusal` when the queue is inactive or at its concurrency limit: as many
    leases as the limit are live. The items of one lease run one after the other, so the
    lease takes one place however many items it holds.

    Nothing is held across statements and no shared row is locked. On SQLite the write lock
    admits one leaser at a time, so the limit read here is exact. On PostgreSQL concurrent
    leasers may each see a free place; :func:`over_limit`, run after the commit, tells which
    of them must give its items back.
    """
    now = now or utcnow()
    queue = connection.execute(_QUEUE_AND_RUNNING, {"queue": queue_name, "now": now}).one_or_none()
    if queue is None:
        raise QueueError(f"unknown queue {queue_name!r}; run `batchnb db upgrade`")
    if not queue.active:
        return LeaseRefusal.QUEUE_INACTIVE
    free = queue.concurrency_limit - (queue.running or 0)
    if free <= 0:
        return LeaseRefusal.AT_CONCURRENCY_LIMIT
    found = connection.execute(
        _LEASE,
        {
            "queue": queue_name,
            "now": now,
            "token": token,
            "until": now + timedelta(seconds=lease_seconds),
            "count": count,
        },
    ).all()
    rows = sorted(found, key=lambda row: (-row.priority, row.scheduled_at, row.id))
    return [
        LeasedItem(
            id=row.id,
            queue_name=queue_name,
            job_type=row.job_type,
            payload=dict(row.payload),
            batch_id=row.batch_id,
            owner=row.owner,
            attempts=row.attempts,
            max_attempts=queue.max_attempts,
            retry_delay_seconds=queue.retry_delay_seconds,
            retry_backoff=queue.retry_backoff,
            token=token,
            concurrency_limit=queue.concurrency_limit,
        )
        for row in rows
    ]


def over_limit(connection: Connection, leased: Sequence[LeasedItem]) -> bool:
    """Whether a committed lease took the queue past its limit (PostgreSQL only; else False).

    Leasers that raced each saw a free place; once committed, each counts the live leases of
    *others*. Whoever sees the limit already reached by others gives its items back, so the
    limit holds without a lock. Two racers may both give back (both saw the other); the
    items are then re-sent a moment later, which costs a second, never the limit.
    """
    if not leased or connection.dialect.name != "postgresql":
        return False
    first = leased[0]
    others = connection.execute(
        _RUNNING_OTHERS, {"queue": first.queue_name, "now": utcnow(), "token": first.token}
    ).scalar()
    return (others or 0) + 1 > first.concurrency_limit
