"""Database operations on ``queue_items``: the truth about every unit of work.

Every state change is a conditional UPDATE, so two workers can never both own an item and a
worker that lost its lease can never overwrite what another wrote. Callers pass the connection;
each function is one step of a transaction the caller commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

from sqlalchemy import (
    Connection,
    CursorResult,
    Row,
    Table,
    and_,
    bindparam,
    func,
    insert,
    select,
    text,
    update,
)

from batchnb.db.models import ProcessingQueue, QueueItem, UTCDateTime
from batchnb.db.statuses import ItemStatus
from batchnb.errors import CancelledError, LeaseLostError, QueueError
from batchnb.queue.messages import Message, Payload

READY_STATUSES = (ItemStatus.PENDING.value, ItemStatus.RETRYING.value)

P = TypeVar("P", bound=Payload)


@dataclass(frozen=True)
class LeasedItem:
    """An item a worker holds, with what it needs to run and to retry it."""

    id: int
    queue_name: str
    job_type: str
    payload: dict[str, Any]
    batch_id: int | None
    owner: str
    attempts: int
    max_attempts: int
    retry_delay_seconds: float
    retry_backoff: float
    token: str
    concurrency_limit: int = 0
    """The queue's limit when leased (:func:`over_limit` checks it after the commit)."""

    def payload_as(self, kind: type[P]) -> P:
        """The payload as the job type's :class:`Payload` class."""
        if kind.job_type != self.job_type:
            raise QueueError(f"item {self.id} is a {self.job_type!r} job, not {kind.job_type!r}")
        return kind.from_json(self.payload)

    def retry_delay(self) -> float:
        """Seconds before the next attempt: exponential backoff on the attempts so far."""
        return self.retry_delay_seconds * self.retry_backoff ** max(self.attempts - 1, 0)


def enqueue(
    connection: Connection,
    payloads: Sequence[Payload],
    *,
    owner: str,
    now: datetime,
    batch_id: int | None = None,
    priority: int = 0,
) -> list[Message]:
    """Insert one pending item per payload in the caller's transaction (one bulk insert).

    Returns the messages to send with :meth:`QueueRuntime.dispatch` once the transaction has
    committed, in the order of ``payloads``.
    """
    if not payloads:
        return []
    item_ids = connection.scalars(
        insert(items_table).returning(items_table.c.id, sort_by_parameter_order=True),
        [
            {
                "queue_name": payload.queue,
                "job_type": payload.job_type,
                "payload": payload.to_json(),
                "batch_id": batch_id,
                "owner": owner,
                "status": ItemStatus.PENDING.value,
                "priority": priority,
                "attempts": 0,
                "scheduled_at": now,
                "created_at": now,
                "updated_at": now,
            }
            for payload in payloads
        ],
    ).all()
    return [Message(item_id, priority) for item_id in item_ids]


def get_queue(connection: Connection, name: str) -> Row[Any]:
    """The queue's settings row."""
    queue = connection.execute(
        select(queues_table).where(queues_table.c.name == name)
    ).one_or_none()
    if queue is None:
        raise QueueError(f"unknown queue {name!r}; run `batchnb db upgrade` to create the defaults")
    return queue


# Written out literally (not as bound parameters) so that SQLite can match it with the
# partial index ix_queue_items_ready and read the best item straight off that index.
READY_CONDITION = text("queue_items.status IN ('pending', 'retrying')")
PROCESSING_CONDITION = text("queue_items.status = 'processing'")

# The hot path (lease, finish, checkpoint) runs Core statements built once: building and
# hashing a statement per call cost more than the database work itself.
items_table = cast(Table, QueueItem.__table__)
queues_table = cast(Table, ProcessingQueue.__table__)

_HELD = and_(
    items_table.c.id == bindparam("item_id"),
    items_table.c.locked_by == bindparam("token"),
    PROCESSING_CONDITION,
)
_FINISH = (
    update(items_table)
    .where(_HELD)
    .values(
        status=bindparam("new_status"),
        locked_by=None,
        locked_until=None,
        finished_at=bindparam("now", type_=UTCDateTime()),
        updated_at=bindparam("now", type_=UTCDateTime()),
        last_error=bindparam("error"),
    )
)
_LEASE_STATE = select(items_table.c.status, items_table.c.locked_by).where(
    items_table.c.id == bindparam("item_id")
)


def _rowcount(connection: Connection, statement: Any) -> int:
    """Rows an UPDATE changed (the conditional updates decide ownership by this count)."""
    result = cast(CursorResult[Any], connection.execute(statement))
    return result.rowcount


def _held(item: LeasedItem) -> Any:
    return (
        (QueueItem.id == item.id)
        & (QueueItem.locked_by == item.token)
        & (QueueItem.status == ItemStatus.PROCESSING.value)
    )


def check_lease(connection: Connection, item: LeasedItem) -> None:
    """Raise if the item was cancelled or this worker no longer holds it (a checkpoint)."""
    row = connection.execute(_LEASE_STATE, {"item_id": item.id}).one_or_none()
    if row is None:
        raise CancelledError(f"queue item {item.id} was deleted")
    if row.status == ItemStatus.CANCELLED.value:
        raise CancelledError(f"queue item {item.id} was cancelled")
    if row.locked_by != item.token or row.status != ItemStatus.PROCESSING.value:
        raise LeaseLostError(f"queue item {item.id} is no longer leased by {item.token}")


def finish(
    connection: Connection,
    item: LeasedItem,
    status: ItemStatus,
    now: datetime,
    error: str | None = None,
) -> bool:
    """Move a held item to a final status; False when the lease was lost (nothing changed)."""
    result = cast(
        CursorResult[Any],
        connection.execute(
            _FINISH,
            {
                "item_id": item.id,
                "token": item.token,
                "new_status": status.value,
                "now": now,
                "error": error,
            },
        ),
    )
    return result.rowcount == 1


def finish_all(
    connection: Connection, leased: Sequence[LeasedItem], status: ItemStatus, now: datetime
) -> bool:
    """Move every held item of ``leased`` to a final status in one statement.

    True when all were held. False when one was not (cancelled, or its lease lost): the
    caller must then roll back, as the others did change, and finish them one by one.
    """
    result = cast(
        CursorResult[Any],
        connection.execute(
            _FINISH,
            [
                {
                    "item_id": item.id,
                    "token": item.token,
                    "new_status": status.value,
                    "now": now,
                    "error": None,
                }
                for item in leased
            ],
        ),
    )
    return result.rowcount == len(leased)


def finish_cancelled(connection: Connection, item: LeasedItem, now: datetime) -> bool:
    """Clear the lease of an item that was cancelled while it ran."""
    result = _rowcount(
        connection,
        update(QueueItem)
        .where(
            QueueItem.id == item.id,
            QueueItem.locked_by == item.token,
            QueueItem.status == ItemStatus.CANCELLED.value,
        )
        .values(locked_by=None, locked_until=None, finished_at=now, updated_at=now)
        .execution_options(synchronize_session=False),
    )
    return result == 1


def schedule_retry(
    connection: Connection, item: LeasedItem, error: str, now: datetime
) -> datetime | None:
    """Put a held item back as ``retrying`` after its backoff; None when the lease was lost."""
    when = now + timedelta(seconds=item.retry_delay())
    result = _rowcount(
        connection,
        update(QueueItem)
        .where(_held(item))
        .values(
            status=ItemStatus.RETRYING.value,
            locked_by=None,
            locked_until=None,
            scheduled_at=when,
            last_error=error,
            updated_at=now,
        )
        .execution_options(synchronize_session=False),
    )
    return when if result == 1 else None


def release(
    connection: Connection, item: LeasedItem, now: datetime, *, count_attempt: bool = False
) -> bool:
    """Give a held item back as pending; a graceful stop does not count the attempt."""
    result = _rowcount(
        connection,
        update(QueueItem)
        .where(_held(item))
        .values(
            status=ItemStatus.PENDING.value,
            locked_by=None,
            locked_until=None,
            attempts=QueueItem.attempts if count_attempt else QueueItem.attempts - 1,
            updated_at=now,
        )
        .execution_options(synchronize_session=False),
    )
    return result == 1


def extend_leases(
    connection: Connection, worker_id: str, lease_seconds: float, now: datetime
) -> int:
    """Extend every lease this worker holds (called from its heartbeat)."""
    result = _rowcount(
        connection,
        update(QueueItem)
        .where(
            QueueItem.locked_by.like(f"{worker_id}#%"),
            QueueItem.status == ItemStatus.PROCESSING.value,
        )
        .values(locked_until=now + timedelta(seconds=lease_seconds))
        .execution_options(synchronize_session=False),
    )
    return result


def expire_leases_of(connection: Connection, worker_id: str, now: datetime) -> int:
    """End every lease of a worker known to be dead now, so the next reclaim requeues them."""
    return _rowcount(
        connection,
        update(QueueItem)
        .where(
            QueueItem.locked_by.like(f"{worker_id}#%"),
            QueueItem.status == ItemStatus.PROCESSING.value,
            QueueItem.locked_until >= now,
        )
        .values(locked_until=now - timedelta(microseconds=1))
        .execution_options(synchronize_session=False),
    )


def held_by_worker(connection: Connection, worker_id: str) -> list[Row[Any]]:
    """Items this worker still holds (used to release them when it stops)."""
    return list(
        connection.execute(
            select(items_table).where(
                items_table.c.locked_by.like(f"{worker_id}#%"),
                items_table.c.status == ItemStatus.PROCESSING.value,
            )
        ).all()
    )


def expired_leases(connection: Connection, now: datetime, limit: int = 1000) -> list[Row[Any]]:
    """Items whose worker stopped extending its lease (crashed, killed, or hung).

    On PostgreSQL rows another session has locked are skipped (``SKIP LOCKED``): a worker
    frozen inside a transaction on them keeps them until the server ends its session
    (``idle_in_transaction_session_timeout``), and the others are reclaimed meanwhile.
    """
    return list(
        connection.execute(
            select(items_table)
            .where(
                items_table.c.status == ItemStatus.PROCESSING.value,
                items_table.c.locked_until < now,
            )
            .order_by(items_table.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
    )


def leased_view(connection: Connection, row: Row[Any]) -> LeasedItem:
    """A :class:`LeasedItem` for a row someone else leased (the reaper acts on its behalf)."""
    queue = get_queue(connection, row.queue_name)
    return LeasedItem(
        id=row.id,
        queue_name=row.queue_name,
        job_type=row.job_type,
        payload=dict(row.payload),
        batch_id=row.batch_id,
        owner=row.owner,
        attempts=row.attempts,
        max_attempts=queue.max_attempts,
        retry_delay_seconds=queue.retry_delay_seconds,
        retry_backoff=queue.retry_backoff,
        token=row.locked_by or "",
    )


def count_ready(connection: Connection) -> int:
    """Items waiting for a worker (pending or retrying, due or not), across queues."""
    return (
        connection.scalar(select(func.count()).select_from(QueueItem).where(READY_CONDITION)) or 0
    )


def oldest_ready(connection: Connection, limit: int, now: datetime) -> list[Message]:
    """Messages for the ``limit`` ready items a worker would take first (due now or later)."""
    rows = connection.execute(
        select(QueueItem.id, QueueItem.priority, QueueItem.scheduled_at)
        .where(READY_CONDITION)
        .order_by(QueueItem.scheduled_at, QueueItem.priority.desc(), QueueItem.id)
        .limit(limit)
    ).all()
    return [
        Message(row.id, row.priority, row.scheduled_at if row.scheduled_at > now else None)
        for row in rows
    ]


def cancel_items(
    connection: Connection,
    item_ids: Iterable[int] | None = None,
    *,
    batch_id: int | None = None,
    now: datetime,
) -> int:
    """Cancel pending, retrying and running items; running ones stop at their next checkpoint."""
    query = update(QueueItem).where(
        QueueItem.status.in_((*READY_STATUSES, ItemStatus.PROCESSING.value))
    )
    if batch_id is not None:
        query = query.where(QueueItem.batch_id == batch_id)
    if item_ids is not None:
        query = query.where(QueueItem.id.in_(list(item_ids)))
    if batch_id is None and item_ids is None:
        raise QueueError("cancel_items needs item ids or a batch id")
    return _rowcount(
        connection,
        query.values(status=ItemStatus.CANCELLED.value, updated_at=now).execution_options(
            synchronize_session=False
        ),
    )


def cancel_payload(connection: Connection, payload: Payload, now: datetime) -> list[int]:
    """Cancel the open items carrying exactly ``payload`` (e.g. one export's job); their ids."""
    wanted = payload.to_json()
    candidates = connection.execute(
        select(QueueItem.id, QueueItem.payload).where(
            QueueItem.job_type == payload.job_type,
            QueueItem.status.in_((*READY_STATUSES, ItemStatus.PROCESSING.value)),
        )
    )
    item_ids = [item_id for item_id, stored in candidates if stored == wanted]
    if item_ids:
        cancel_items(connection, item_ids, now=now)
    return item_ids


def batch_priority(connection: Connection, batch_id: int) -> int:
    """The highest priority among a batch's items (what a retry of its documents gets)."""
    return int(
        connection.scalar(
            select(func.max(QueueItem.priority)).where(QueueItem.batch_id == batch_id)
        )
        or 0
    )


def priority_of(connection: Connection, item_id: int) -> int:
    """An item's priority (a message sent again keeps it)."""
    return int(
        connection.execute(select(QueueItem.priority).where(QueueItem.id == item_id)).scalar_one()
    )
